"""Knowledge distillation (``cnnzoo distill``): a small student trained on a trained teacher's soft labels.

Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural Network" (2015), https://arxiv.org/abs/1503.02531:
the student minimises ``alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE``
(:func:`cnnzoo.training.trainer.distillation_loss`). The teacher's logits of every training image are computed
once, through the fastest engine measured at fp32, and cached; so that the student sees exactly the images the
teacher saw, **augmentation is off** for the student — and for its baseline, the same student trained alone with
the same recipe, budget and seed, so the two differ only in the loss. The student trains through the ordinary
loop (:func:`cnnzoo.training.fit.fit`), so it checkpoints and resumes as any run.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from ..errors import CnnzooError
from .augment import BatchPipeline


@dataclass
class Teacher:
    """A trained teacher, the pipeline its checkpoint was trained with, and the loss's temperature and weight."""

    model: nn.Module
    pipeline: BatchPipeline
    classes: tuple[str, ...] | None
    temperature: float
    alpha: float
    source: str = ""
    #: the teacher's training config (its data and classes)
    config: dict[str, Any] | None = None
    #: (a digest of the training images, their logits): one computation for every run on the same images
    _cache: tuple[str, Tensor] | None = field(default=None, repr=False)

    def cached(self, data, say: Callable[[str], None]) -> tuple[Tensor, float, float]:
        """The teacher's logits of every training image of ``data`` (computed once), T and alpha, for
        :func:`cnnzoo.training.trainer.train_one_epoch`."""
        from ..runtime import build_engine

        if self.model.num_classes != data.num_classes or (self.classes and tuple(self.classes) != tuple(data.classes)):
            theirs = ", ".join(map(str, (self.classes or ())[:3]))
            raise CnnzooError(f"the teacher {self.source} was trained on {self.model.num_classes} classes "
                              f"({theirs}, ...) but the data's {data.num_classes} are {', '.join(map(str, data.classes[:3]))}, ...; "
                              "distil on the data the teacher was trained on")
        images = data.train_images
        key = hashlib.sha1(images.cpu().contiguous().numpy().tobytes()).hexdigest()
        if self._cache is not None and self._cache[0] == key:  # the same images again (a later pruning round)
            say(f"teacher logits of {len(images):,} training images: cached before; augmentation is off; "
                f"T {self.temperature:g}, alpha {self.alpha:g}")
            return self._cache[1].to(images.device), self.temperature, self.alpha
        t0 = time.perf_counter()
        shape = tuple(self.pipeline(images[:1].cpu()).shape[1:])
        engine = build_engine(self.model, shape, engine="auto", precision="fp32", device="cpu",
                              batch_size=min(64, len(images)), log=say)
        with torch.no_grad():
            logits = torch.cat([engine(self.pipeline(images[i:i + 256].cpu())).float()
                                for i in range(0, len(images), 256)])
        say(f"teacher logits of {len(images):,} training images computed once in {time.perf_counter() - t0:.1f} s "
            f"({engine.name} {engine.precision}) and cached; augmentation is off (the student sees the images the "
            f"teacher saw); T {self.temperature:g}, alpha {self.alpha:g}")
        self._cache = (key, logits)
        return logits.to(images.device), self.temperature, self.alpha


def load_teacher(path: Path, temperature: float, alpha: float) -> Teacher:
    """The teacher of a training checkpoint (with its recipe's pipeline), or the user's one line."""
    from ..registry import create_model
    from .checkpoint import load_run_checkpoint

    ckpt = load_run_checkpoint(path)
    model = create_model(ckpt["model_name"], **ckpt["model_args"])
    model.load_state_dict(ckpt["model"])
    p = ckpt["pipeline"]
    pipeline = BatchPipeline(tuple(p["mean"]), tuple(p["std"]), p["size"], p["fit"])
    classes = tuple(ckpt["classes"]) if ckpt.get("classes") else None
    return Teacher(model.eval(), pipeline, classes, temperature, alpha, str(path), ckpt["config"])


def say_teacher_quality(teacher: Teacher, path: Path, log: Callable[[str], None]) -> None:
    """The teacher's test top-1 from its run's ``report.json`` (beside the checkpoint), and a warning where it is
    near chance: a student distilled with alpha near 1 learns the teacher's mistakes."""
    report = Path(path).parent / "report.json"
    try:
        top1 = float(json.loads(report.read_text())["test_top1"])
    except (OSError, ValueError, KeyError, TypeError):
        return  # a checkpoint moved away from its run: nothing to say
    log(f"the teacher's test top-1: {top1:.4f} ({report})")
    chance = 1 / teacher.model.num_classes
    if top1 < 2 * chance:
        log(f"warning: the teacher is near chance ({top1:.4f}, chance {chance:.4f}): with alpha "
            f"{teacher.alpha:g} the student mostly learns its mistakes; train the teacher longer first")


def student_config(student: str, teacher_config: dict[str, Any], *, data: str | None, data_root: str | None,
                   epochs: int | None, seed: int, out: Path, limit_train: int | None, limit_test: int | None,
                   recipe: str | None = None):
    """The student's run: its own recipe, on the teacher's data (its classes, and the subset and validation split
    it was trained with, where the data is the same), augmentation off."""
    from .config import TrainConfig
    from .recipes import default_recipe, recipe_overrides

    recipe = recipe or default_recipe(student)
    values = recipe_overrides(recipe)
    kwargs = values.pop("model_kwargs", {})
    same_data = data is None or data == teacher_config["data"]
    values.update(model=student, recipe=recipe, data=data or teacher_config["data"], seed=seed, augment=(),
                  progress=False, out=str(out), model_kwargs=kwargs,
                  data_root=data_root or (teacher_config.get("data_root") if same_data else None),
                  classes=tuple(teacher_config.get("classes") or ()) if same_data else ())
    if same_data:
        values.update({k: teacher_config[k] for k in ("limit_per_class", "limit_train", "limit_test", "val_size")
                       if teacher_config.get(k) is not None})
    for key, value in (("epochs", epochs), ("limit_train", limit_train), ("limit_test", limit_test)):
        if value:
            values[key] = value
    return TrainConfig.from_dict(values)


def distill_run(teacher_path: Path, student: str, *, temperature: float = 4.0, alpha: float = 0.9,
                epochs: int | None = None, seed: int = 0, baseline: bool = True, recipe: str | None = None,
                data: str | None = None,
                data_root: str | None = None, out: str | None = None, resume: bool = False, overwrite: bool = False,
                limit_train: int | None = None, limit_test: int | None = None,
                log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train ``student`` distilled from the checkpoint ``teacher_path`` (``OUT/student``) and, unless not
    ``baseline``, alone with the same recipe, budget and seed (``OUT/baseline``); returns the report
    (also ``OUT/report.json``)."""
    from ..registry import model_info
    from . import runfolder
    from .fit import fit
    from .outputs import write_json

    model_info(student)  # an unknown name says so first
    if not 0 <= alpha <= 1:
        raise CnnzooError(f"--alpha {alpha:g} is outside [0, 1]: it weighs the teacher's term against the labels'")
    teacher = load_teacher(teacher_path, temperature, alpha)
    tcfg = teacher.config
    base = runfolder.default_base(student, (data or tcfg["data"]) + "-distilled")
    claim = runfolder.claim(out, base, resume, overwrite, parts=("student", "baseline"))
    folder = claim.out
    try:
        runs = [("student", teacher)] + ([("baseline", None)] if baseline else [])
        log(f"cnnzoo distill: {student} taught by {teacher.model.model_name} ({teacher_path}); T {temperature:g}, "
            f"alpha {alpha:g}; augmentation off for both"
            + ("; beside it the same student alone, same recipe, budget and seed" if baseline else ""))
        say_teacher_quality(teacher, teacher_path, log)
        reports = {}
        for label, who in runs:
            sub = folder / label
            cfg = student_config(student, tcfg, data=data, data_root=data_root, epochs=epochs, seed=seed, out=sub,
                                 limit_train=limit_train, limit_test=limit_test, recipe=recipe)
            if (sub / "report.json").is_file():
                reports[label] = json.loads((sub / "report.json").read_text())
                log(f"{label}: finished before ({sub / 'report.json'})")
                continue
            again = resume and (sub / "last.pt").is_file()
            reports[label] = fit(cfg, resume=again, overwrite=not again, teacher=who,
                                 log=lambda s, label=label: log(f"  {label}: {s}"))
        result = {"student": student, "teacher": str(teacher_path), "teacher_model": teacher.model.model_name,
                  "temperature": temperature, "alpha": alpha, "seed": seed, "augmentation": "off",
                  "epochs": reports["student"]["epochs"], "data": reports["student"]["data"],
                  "student_top1": reports["student"]["test_top1"],
                  "baseline_top1": reports["baseline"]["test_top1"] if baseline else None}
        write_json(folder / "report.json", result)
        line = f"distilled {student}: test top-1 {result['student_top1']:.4f} ({folder / 'student' / 'best.pt'})"
        if baseline:
            gain = 100 * (result["student_top1"] - result["baseline_top1"])
            line += (f"; alone, same recipe, {result['epochs']} epochs and seed {seed}: {result['baseline_top1']:.4f} "
                     f"(distilled minus alone: {gain:+.2f} points)")
        log(line)
        return result
    finally:
        claim.release()

