"""The settings of a dense-prediction run; free of torch, so that ``--help`` stays quick."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import CnnzooError
from ..training.config import setting

#: FCN heads, and the number of skips each adds (see :mod:`cnnzoo.dense.segmentation`)
HEADS = {"fcn32s": 0, "fcn16s": 1, "fcn8s": 2}
DETECTORS = ("fasterrcnn", "retinanet", "fcos")


@dataclass
class DenseConfig:
    """The settings of a segmentation or detection run (each is a flag of ``cnnzoo segment/detect train``)."""

    task: str = setting("segmentation", "segmentation or detection", scope="none")
    backbone: str = setting("resnet18", "registered model whose stages feed the head", scope="none")
    data: str = setting("", "a VOC-layout folder (segmentation, detection) or a COCO JSON file (detection)")
    head: str = setting("fcn8s", "fcn32s, fcn16s or fcn8s; detection: fasterrcnn, retinanet or fcos")
    weights: str | None = setting(None, "the backbone's pretrained weights: a tag such as imagenet, or a file "
                                        "(default: its initial weights, i.e. from scratch)")
    epochs: int = setting(20, "passes over the training split")
    batch_size: int = setting(16, "images per optimisation step")
    optimizer: str = setting("adamw", "sgd or adamw")
    lr: float = setting(1e-3, "peak learning rate")
    momentum: float = setting(0.9, "SGD momentum")
    nesterov: bool = setting(False, "Nesterov momentum")
    weight_decay: float = setting(1e-4, "weight decay")
    schedule: str = setting("onecycle", "learning-rate schedule: cosine, onecycle, multistep or constant")
    warmup_epochs: float | None = setting(None, "epochs of linear warm-up (default: 1, or an eighth of the run "
                                                "where that is shorter, so that a short run is not all warm-up)")
    milestones: tuple[float, ...] = setting((0.5, 0.75), "multistep: where the rate drops, as fractions of the run")
    gamma: float = setting(0.1, "multistep: the rate's factor at each milestone")
    step_epochs: int = setting(8, "unused by the dense schedules; kept for the shared schedule code", scope="none")
    augment: tuple[str, ...] = setting(("flip",), "augmentations, applied alike to image and target: flip")
    image_size: int | None = setting(None, "resize images (and masks) to this side (default: their own size)")
    input_scale: float = setting(1.0, "segmentation: enlarge each image by this factor inside the segmenter, its "
                                      "scores brought back to the image's size (1.5 on 96-px images: FCN-8s's "
                                      "finest skip on 5.3-px cells instead of 8; scale² the computation)")
    channels_last: bool = setting(True, "segmentation: keep the segmenter's weights and images channels-last "
                                        "(NHWC), which oneDNN's and cuDNN's convolutions run faster")
    min_score: float = setting(0.05, "detection: the score below which detections are dropped")
    limit_train: int | None = setting(None, "use only the first N training images (quick runs)")
    limit_val: int | None = setting(None, "evaluate on the first N held-out images only")
    seed: int = setting(0, "seed of initialisation and data order")
    device: str = setting("auto", "auto, cpu, cuda, cuda:N or mps")
    out: str | None = setting(None, "run folder (default: runs/BACKBONE-HEAD-DATA, then -2, -3, ...)")

    def check(self, where: dict[str, str] | None = None) -> None:
        """Refuse values no run can use, in one line naming the flag, or ``where`` it came from
        (``{"lr": "lr in config file run.toml"}``)."""
        heads = HEADS if self.task == "segmentation" else DETECTORS
        rules = [("epochs", self.epochs >= 1, "at least 1"), ("batch_size", self.batch_size >= 1, "at least 1"),
                 ("lr", self.lr > 0, "positive"), ("weight_decay", self.weight_decay >= 0, "0 or more"),
                 ("head", self.head in heads, "one of " + ", ".join(heads)),
                 ("optimizer", self.optimizer in ("sgd", "adamw"), "sgd or adamw"),
                 ("schedule", self.schedule in ("cosine", "onecycle", "multistep", "constant"),
                  "cosine, onecycle, multistep or constant"),
                 ("augment", all(a in ("flip",) for a in self.augment), "flip, or '' for none"),
                 ("image_size", self.image_size is None or self.image_size >= 16, "at least 16"),
                 ("input_scale", 0 < self.input_scale <= 8 and (self.task == "segmentation" or self.input_scale == 1),
                  "in (0, 8] (and 1 for detection)"),
                 ("warmup_epochs", self.warmup_epochs is None or 0 <= self.warmup_epochs < self.epochs,
                  f"0 or more and under --epochs ({self.epochs}: the rate would only rise)"),
                 ("limit_train", self.limit_train is None or self.limit_train >= 1, "at least 1"),
                 ("limit_val", self.limit_val is None or self.limit_val >= 1, "at least 1")]
        for name, ok, rule in rules:
            if not ok:
                value = getattr(self, name)
                shown = ",".join(map(str, value)) if isinstance(value, tuple) else repr(value)
                label = (where or {}).get(name) or "--" + name.replace("_", "-")
                raise CnnzooError(f"{label} must be {rule}, got {shown}")
