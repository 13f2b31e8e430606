"""A run's settings: one typed config, layered recipe → file (TOML) → command-line flags.

The resolved config is printed at start and saved with the run and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import CnnzooError


@dataclass
class TrainConfig:
    """Everything a training run depends on. ``None`` means "the recipe's / model's default"."""

    model: str = "lenet5"
    data: str = "fashion-mnist"
    data_root: str | None = None
    recipe: str | None = None
    epochs: int = 10
    batch_size: int = 128
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    # plateau: /gamma when val accuracy stalls `patience` epochs; multistep: at `milestones` (fractions of
    # the run); exponential: x gamma every `step_epochs`; cosine / onecycle: per step, after warm-up.
    schedule: str = "plateau"
    gamma: float = 0.1
    patience: int = 2
    milestones: tuple[float, ...] = (0.5, 0.75)
    step_epochs: int = 8
    warmup_epochs: float = 0.0
    label_smoothing: float = 0.0
    aux_weight: float = 0.3
    augment: tuple[str, ...] = ("crop", "flip")
    val_size: int = 5000  # held out of the training set for validation (at most a fifth of it)
    small_input: str = "variant"  # variant: the model's small-image variant; upsample: resize the data
    image_size: int | None = None  # target side; None: what the model needs
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda
    amp: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 | fp16 | off
    # None: on for CUDA, where channels-last feeds tensor cores without transposes; off on CPU, where it sped
    # up some of our models and slowed others (LeNet-5 with batch norm) in our measurements.
    channels_last: bool | None = None
    compile: bool = False
    clip_grad: float | None = None
    ema: float | None = None  # EMA decay, e.g. 0.999
    limit_train: int | None = None  # use only the first N training images (smoke tests)
    # Transfer learning (see cnnzoo.training.transfer).
    weights: str | None = None  # pretrained weights: a file or a registered tag such as "imagenet"
    strategy: str | None = None  # linear | top:K | full | auto; None trains everything at one rate
    reinit: bool = False  # top:K: re-initialise the retrained stages
    lr_spread: float = 10.0  # full: the stem's rate is lr / lr_spread, geometric up to the classifier
    head_epochs: int = 0  # full: classifier-only epochs before unfreezing
    bn: str = "frozen"  # frozen: BN of frozen stages keeps its statistics; train: updates them
    similar: bool | None = None  # auto: stated similarity to the pretraining data; None measures it
    classes: tuple[int, ...] = ()  # keep only these classes of the dataset, relabelled 0..n-1
    limit_per_class: int | None = None  # keep this many training images per class (seeded)
    out: str | None = None
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name: f for f in fields(cls)}
        unknown = [k for k in d if k not in known]
        if unknown:
            raise CnnzooError(f"unknown setting(s) {', '.join(unknown)}; see `cnnzoo train --help`")
        values = {k: tuple(v) if isinstance(v, list) and k in _TUPLES else v for k, v in d.items()}
        return cls(**values)

    def check(self) -> None:
        """Refuse values no run can use, naming the flag: one line instead of an error deep in torch."""
        from .augment import AUGMENTATIONS

        ranges = [
            ("epochs", self.epochs >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
            ("lr", self.lr > 0, "positive"), ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, "0 or more"), ("gamma", self.gamma > 0, "positive"),
            ("patience", self.patience >= 0, "0 or more"), ("step_epochs", self.step_epochs >= 1, "at least 1"),
            ("warmup_epochs", self.warmup_epochs >= 0, "0 or more"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("aux_weight", self.aux_weight >= 0, "0 or more"), ("val_size", self.val_size >= 0, "0 or more"),
            ("image_size", self.image_size is None or self.image_size >= 1, "at least 1"),
            ("clip_grad", self.clip_grad is None or self.clip_grad > 0, "positive"),
            ("ema", self.ema is None or 0 < self.ema < 1, "in (0, 1), e.g. 0.999"),
            ("limit_train", self.limit_train is None or self.limit_train >= 1, "at least 1"),
            ("limit_per_class", self.limit_per_class is None or self.limit_per_class >= 1, "at least 1"),
            ("lr_spread", self.lr_spread >= 1, "at least 1"), ("head_epochs", self.head_epochs >= 0, "0 or more"),
            ("small_input", self.small_input in ("variant", "upsample"), "variant or upsample"),
        ]
        for name, ok, rule in ranges:
            if not ok:
                raise CnnzooError(f"--{name.replace('_', '-')} must be {rule}, got {getattr(self, name)}")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise CnnzooError(f"unknown augmentation {unknown[0]!r} in --augment; choose from {', '.join(AUGMENTATIONS)}")

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


_TUPLES = ("augment", "milestones", "classes")


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (or YAML when PyYAML is installed)."""
    p = Path(path)
    if not p.is_file():
        raise CnnzooError(f"config file {p} does not exist")
    try:
        if p.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise CnnzooError("reading YAML needs PyYAML (pip install pyyaml); or write the config as TOML") from None
            data = yaml.safe_load(p.read_text()) or {}
        else:
            data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CnnzooError(f"cannot parse {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise CnnzooError(f"{p} must hold a table of settings")
    return data
