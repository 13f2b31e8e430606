"""A run's settings: one typed config, layered recipe → file (TOML) → command-line flags.

The resolved config is printed at start and saved with the run and in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from ..errors import CnnzooError

SCOPES = ("all", "train", "finetune", "none")


def setting(default: Any = MISSING, help: str = "", *, scope: str = "all", factory: Any = MISSING) -> Any:
    """A :class:`TrainConfig` field with its one line of ``--help``, kept here so that it has one source.

    ``scope`` names the commands that offer it as a flag: ``all``, ``train`` (from scratch only),
    ``finetune`` (only with pretrained weights: ``cnnzoo finetune`` and ``transfer-study``) or ``none``
    (set another way, e.g. the positional MODEL).
    """
    assert scope in SCOPES, scope
    return field(default=default, default_factory=factory, metadata={"help": help, "scope": scope})


@dataclass
class TrainConfig:
    """Everything a training run depends on. ``None`` means "the recipe's / model's default"."""

    model: str = setting("lenet5", "registered model name (see `cnnzoo list`)", scope="none")
    data: str = setting("fashion-mnist", "dataset: fashion-mnist, mnist, cifar10, cifar100 or folder:PATH")
    data_root: str | None = setting(None, "folder holding the dataset's files (default: the data cache, "
                                          "see `cnnzoo data fetch`)")
    recipe: str | None = setting(None, "named settings applied first: fast or a paper's, e.g. resnet2015-cifar "
                                       "(default: the model's paper recipe)")
    epochs: int = setting(10, "passes over the training set")
    batch_size: int = setting(128, "images per optimisation step (over all processes)")
    optimizer: str = setting("sgd", "sgd or adamw")
    lr: float = setting(0.01, "learning rate (the peak of warm-up, onecycle and cosine schedules)")
    momentum: float = setting(0.9, "SGD momentum (0 for none; AdamW ignores it)")
    nesterov: bool = setting(False, "Nesterov momentum")
    weight_decay: float = setting(5e-4, "L2 weight decay (AdamW: decoupled)")
    # plateau: /gamma when val accuracy stalls `patience` epochs; multistep: at `milestones` (fractions of
    # the run); exponential: x gamma every `step_epochs`; cosine / onecycle: per step, after warm-up.
    schedule: str = setting("plateau", "learning-rate schedule: plateau, multistep, exponential, cosine, "
                                       "onecycle or constant")
    gamma: float = setting(0.1, "the rate's factor at each plateau, milestone or exponential step")
    patience: int = setting(2, "plateau: epochs without a better validation accuracy before the rate drops")
    milestones: tuple[float, ...] = setting((0.5, 0.75), "multistep: where the rate drops, as fractions of "
                                                         "the run")
    step_epochs: int = setting(8, "exponential: epochs between steps")
    warmup_epochs: float = setting(0.0, "epochs of linear warm-up from zero (fractions allowed)")
    label_smoothing: float = setting(0.0, "label smoothing of the cross-entropy, in [0, 1)")
    aux_weight: float = setting(0.3, "weight of the auxiliary heads' losses (GoogLeNet, Inception-v3)")
    augment: tuple[str, ...] = setting(("crop", "flip"), "training augmentations, from crop, flip, rrc, "
                                                         "jitter, pca, erase; none: --augment ''")
    val_size: int = setting(5000, "training images held out for validation (at most a fifth of them)")
    small_input: str = setting("variant", "images below the model's minimum size: variant (its small-image "
                                          "variant) or upsample", scope="train")
    image_size: int | None = setting(None, "resize images to this side (default: what the model or its "
                                           "weights need)")
    model_kwargs: dict[str, Any] = setting(help="constructor arguments (--model-arg KEY=VALUE)", scope="none",
                                           factory=dict)
    seed: int = setting(0, "seed of initialisation, data order, augmentation and the validation split")
    device: str = setting("auto", "auto, cpu, cuda, cuda:N or mps (auto: cuda when available)")
    amp: str = setting("auto", "mixed precision: auto (bf16 on GPU; on a CPU with bf16 units, bf16 where a few "
                               "measured steps are faster), bf16, fp16 or off")
    # None: on for CUDA, where channels-last feeds tensor cores without transposes; on a CPU, with bf16 where
    # --amp auto measured bf16 + channels_last faster (training/amp.py), else off: in fp32 it sped up some of
    # our models and slowed others (LeNet-5 with batch norm) in our measurements.
    channels_last: bool | None = setting(None, "channels-last memory format (default: on for CUDA, with bf16 on "
                                               "a CPU where measured faster, else off)")
    compile: bool = setting(False, "torch.compile the model")
    clip_grad: float | None = setting(None, "clip the gradients' norm to this (default: no clipping)")
    ema: float | None = setting(None, "evaluate an exponential moving average of the weights with this decay, "
                                      "e.g. 0.999 (default: off)")
    limit_train: int | None = setting(None, "use only the first N training images (smoke tests)")
    # Transfer learning (see cnnzoo.training.transfer).
    weights: str | None = setting(None, "pretrained weights: a cnnzoo checkpoint, a .safetensors or .pth file, "
                                        "or a tag such as imagenet", scope="finetune")
    strategy: str | None = setting(None, "what retrains: linear (the classifier), top:K (and the last K stages), "
                                         "full, or auto (chosen by data size and similarity)", scope="finetune")
    reinit: bool = setting(False, "top:K: re-initialise the retrained stages", scope="finetune")
    lr_spread: float = setting(10.0, "full: the stem trains at lr / this, rising geometrically to lr at the "
                                     "classifier", scope="finetune")
    head_epochs: int = setting(0, "full: classifier-only epochs before everything unfreezes", scope="finetune")
    bn: str = setting("frozen", "batch norm of frozen stages: frozen (keeps its statistics) or train",
                      scope="finetune")
    similar: bool | None = setting(None, "auto: the data resembles the pretraining data (default: measured)",
                                   scope="finetune")
    cache_features: bool = setting(True, "linear and top:K: run the frozen part once per image and train on its "
                                         "cached outputs", scope="finetune")
    steps: int | None = setting(None, "linear and top:K on cached features: optimiser steps (default: --epochs "
                                      "passes, at least 1000 for linear and 100 for top:K)", scope="finetune")
    head_lr: float = setting(0.03, "linear on cached features: the classifier's AdamW learning rate",
                             scope="finetune")
    head_weight_decay: float = setting(0.1, "linear on cached features: the classifier's AdamW weight decay",
                                       scope="finetune")
    engine: str = setting("eager", "forward-only passes (frozen features, the test pass): auto, eager, compile, "
                                   "onnxruntime or openvino", scope="finetune")
    precision: str = setting("auto", "the test pass's (and finetune's frozen pass's) arithmetic: auto (the fastest "
                                     "the device computes natively, checked against fp32 on the first batch), fp32 "
                                     "(the exact fp32 figure), bf16 or fp16")
    classes: tuple[int, ...] = setting((), "keep only these classes of the dataset, relabelled 0..n-1 "
                                           "(default: all)")
    limit_per_class: int | None = setting(None, "keep this many training images per class, seeded "
                                                "(default: all)")
    limit_test: int | None = setting(None, "evaluate on the first N test images only (quick runs; default: all)")
    explain: int = setting(0, "after the test pass, Grad-CAM of the N errors the model was surest of and N right "
                              "answers, for each of the 5 most frequent confusions: RUN/explain/index.html "
                              "(needs the explain extra)")
    out: str | None = setting(None, "run folder (default: a new one for each run: runs/MODEL-DATA, then -2, -3, ...)")
    progress: bool = setting(True, "show a progress bar", scope="none")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> "TrainConfig":
        """The config of ``d``'s settings, each checked for its type as a flag would be (``source``, e.g.
        the config file's name, goes into the error)."""
        return cls(**coerce_settings(d, source))

    def check(self, where: dict[str, str] | None = None) -> None:
        """Refuse values no run can use, naming the flag: one line instead of an error deep in torch.

        ``where`` says where a setting came from when not from a flag, e.g. ``{"epochs": "epochs in run.toml"}``.
        """
        from .augment import AUGMENTATIONS
        from .transfer import parse_strategy

        def name_of(key: str) -> str:
            return (where or {}).get(key) or "--" + key.replace("_", "-")

        ranges = [
            ("epochs", self.epochs >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
            ("lr", self.lr > 0, "positive"), ("momentum", 0 <= self.momentum < 1, "in [0, 1)"),
            ("weight_decay", self.weight_decay >= 0, "0 or more"), ("gamma", self.gamma > 0, "positive"),
            ("patience", self.patience >= 0, "0 or more"), ("step_epochs", self.step_epochs >= 1, "at least 1"),
            ("warmup_epochs", self.warmup_epochs >= 0, "0 or more"),
            ("label_smoothing", 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("aux_weight", self.aux_weight >= 0, "0 or more"), ("val_size", self.val_size >= 0, "0 or more"),
            ("image_size", self.image_size is None or self.image_size >= 1, "at least 1"),
            ("milestones", all(0 <= m <= 1 for m in self.milestones), "fractions of the run, in [0, 1]"),
            ("classes", all(c >= 0 for c in self.classes), "class numbers, 0 or more"),
            ("data", self.data != "folder:" and bool(self.data), "a dataset name or folder:PATH"),
            ("out", self.out is None or not Path(self.out).is_file(), "a folder, not an existing file"),
            ("clip_grad", self.clip_grad is None or self.clip_grad > 0, "positive"),
            ("ema", self.ema is None or 0 < self.ema < 1, "in (0, 1), e.g. 0.999"),
            ("limit_train", self.limit_train is None or self.limit_train >= 1, "at least 1"),
            ("limit_per_class", self.limit_per_class is None or self.limit_per_class >= 1, "at least 1"),
            ("lr_spread", self.lr_spread >= 1, "at least 1"), ("head_epochs", self.head_epochs >= 0, "0 or more"),
            ("steps", self.steps is None or self.steps >= 1, "at least 1"),
            ("head_lr", self.head_lr > 0, "positive"), ("head_weight_decay", self.head_weight_decay >= 0, "0 or more"),
            ("limit_test", self.limit_test is None or self.limit_test >= 1, "at least 1"),
            ("explain", self.explain >= 0, "0 or more"),
            ("engine", self.engine in ("auto", "eager", "compile", "onnxruntime", "openvino"),
             "one of auto, eager, compile, onnxruntime, openvino"),
        ]
        ranges += [(name, getattr(self, name) in options, _either(options)) for name, options in CHOICES.items()]
        ranges.append(("device", valid_device(self.device), "auto, cpu, cuda, cuda:N or mps"))
        for name, ok, rule in ranges:
            if not ok:
                value = getattr(self, name)
                shown = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)
                raise CnnzooError(f"{name_of(name)} must be {rule}, got {shown}")
        unknown = [a for a in self.augment if a not in AUGMENTATIONS]
        if unknown:
            raise CnnzooError(f"unknown augmentation {unknown[0]!r} in {name_of('augment')}; "
                              f"choose from {', '.join(AUGMENTATIONS)}")
        if self.strategy is not None:
            try:
                parse_strategy(self.strategy)
            except CnnzooError as exc:
                raise CnnzooError(f"{name_of('strategy')}: {exc}") from None
        if self.explain:
            from ..explain.methods import require_libraries

            require_libraries()  # refused before training, not after it

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# The settings that take one of a few words; `recipe` and `strategy` are checked by their own parsers.
CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("sgd", "adamw"),
    "schedule": ("plateau", "multistep", "exponential", "cosine", "onecycle", "constant"),
    "small_input": ("variant", "upsample"),
    "amp": ("auto", "bf16", "fp16", "off"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "bn": ("frozen", "train"),
}


def _either(options: tuple[str, ...]) -> str:
    return ", ".join(options[:-1]) + " or " + options[-1]


def valid_device(name: str) -> bool:
    """Whether ``name`` is a device string we accept: auto, cpu, cuda, cuda:N or mps (availability is
    checked when the run starts)."""
    kind, sep, index = name.partition(":")
    if sep:
        return kind == "cuda" and index.isdigit()
    return name in ("auto", "cpu", "cuda", "mps")


_KINDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false", dict: "a table"}


def coerce_settings(d: dict[str, Any], source: str | None = None, config: type | None = None,
                    command: str = "train") -> dict[str, Any]:
    """``d`` with each value checked against its field's type in ``config`` (a dataclass of settings,
    default :class:`TrainConfig`; a list becomes a tuple, a whole number a float where a number is wanted),
    so that a config file's ``epochs = "many"`` is one line, not a traceback. ``command`` is named in the
    error of an unknown setting."""
    import typing

    hints = typing.get_type_hints(config or TrainConfig)
    unknown = [k for k in d if k not in hints]
    where = f" in {source}" if source else ""
    if unknown:
        raise CnnzooError(f"unknown setting(s) {', '.join(unknown)}{where}; see `cnnzoo {command} --help`")
    out = {}
    for key, value in d.items():
        ok, coerced, kind = _coerce(value, hints[key])
        if not ok:
            name = f"{key}{where}" if source else f"setting {key}"
            raise CnnzooError(f"{name} must be {kind}, got {value!r}")
        out[key] = coerced
    return out


def _coerce(value: Any, hint: Any) -> tuple[bool, Any, str]:
    """(fits, the value as the field holds it, what was expected) for one setting."""
    import types
    import typing

    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        if value is None and type(None) in args:
            return True, None, ""
        hint = next(a for a in args if a is not type(None))
        args = typing.get_args(hint)
    origin = typing.get_origin(hint) or hint
    if origin is tuple:
        item = args[0]
        if not isinstance(value, (list, tuple)):
            return False, value, f"a list of {_KINDS[item].removeprefix('a ')}s"
        items = [_coerce(v, item) for v in value]
        if not all(ok for ok, _, _ in items):
            return False, value, f"a list of {_KINDS[item].removeprefix('a ')}s"
        return True, tuple(v for _, v, _ in items), ""
    kind = _KINDS[origin]
    if origin is float:
        fits = isinstance(value, (int, float)) and not isinstance(value, bool)
        return fits, float(value) if fits else value, kind
    if origin is int:
        return isinstance(value, int) and not isinstance(value, bool), value, kind
    return isinstance(value, origin), value, kind


def in_scope(name: str, scope: str) -> bool:
    """Whether setting ``name`` means something to a ``scope`` command (``train`` or ``finetune``)."""
    return next(f.metadata.get("scope", "all") for f in fields(TrainConfig) if f.name == name) in ("all", scope)


def to_toml(cfg: TrainConfig, notes: dict[str, str] | None = None, header: str = "", scope: str = "train") -> str:
    """``cfg``'s settings for a ``scope`` command as a TOML file that ``--config`` reads back to the same.

    ``notes`` go as comments after their settings (where each came from); unset (``None``) settings
    are written as comments, since TOML has no null. ``model`` and ``progress`` are the command line's.
    """
    lines = [f"# {line}" for line in header.splitlines()]
    for f in fields(cfg):
        if f.name != "model_kwargs" and not in_scope(f.name, scope):
            continue
        value = getattr(cfg, f.name)
        note = (notes or {}).get(f.name, "")
        text = _toml_value(value) if value is not None else None
        if value is None:
            lines.append(f"# {f.name}: unset; {f.metadata.get('help', '')}")
        elif text is None:
            lines.append(f"# {f.name} = {value!r} (TOML cannot hold it; give it as a flag)")
        else:
            lines.append(f"{f.name} = {text}" + (f"  # {note}" if note else ""))
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        items = [_toml_value(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"  # type: ignore[arg-type]
    if isinstance(value, dict):
        items = {k: _toml_value(v) for k, v in value.items()}
        if None in items.values() or not all(isinstance(k, str) and k.isidentifier() for k in items):
            return None
        return "{" + ", ".join(f"{k} = {v}" for k, v in items.items()) + "}"
    return None


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file, a JSON file (``.json``, e.g. a run's ``config.json``) or YAML (``.yaml``,
    ``.yml``, when PyYAML is installed)."""
    p = Path(path)
    if not p.is_file():
        raise CnnzooError(f"config file {p} does not exist")
    try:
        if p.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError:
                raise CnnzooError("reading YAML needs PyYAML (pip install pyyaml); or write the config as TOML") from None
            try:
                data = yaml.safe_load(p.read_text()) or {}
            except yaml.YAMLError as exc:
                raise CnnzooError(f"cannot parse {p}: {str(exc).splitlines()[0]}") from None
        elif p.suffix == ".json":
            data = json.loads(p.read_text())
        else:
            data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise CnnzooError(f"cannot parse {p}: {exc}") from exc
    if not isinstance(data, dict):
        raise CnnzooError(f"{p} must hold a table of settings")
    return data
