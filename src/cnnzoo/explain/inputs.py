"""What the explain and visualize commands read: a model with its weights, preprocessing and class names,
and image files (a folder's images, with the files that are not images counted and skipped)."""

from __future__ import annotations

import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from torch import Tensor, nn

from ..errors import CnnzooError
from ..pretrained import Preprocessing


@dataclass
class Loaded:
    """A model in eval mode with what its weights expect and how its outputs are called."""

    model: nn.Module
    prep: Preprocessing
    names: tuple[str, ...]
    weights: str


def load_model(model: str, weights: str | None, command: str, allow_random: bool = False) -> Loaded:
    """``model`` (a registered name, or a weights file that records its model) with ``weights`` (a tag or a file;
    default the model's pretrained weights). ``allow_random``: a model without weights keeps its initialisation
    (``visualize filters`` of an untrained AlexNet), said on stderr."""
    from ..datasets.readers import IMAGE_SUFFIXES
    from ..preprocess import class_names, preprocessing_for
    from ..registry import create_model, create_model_with_weights, model_info

    if os.path.splitext(model)[1].lower() in IMAGE_SUFFIXES:
        raise CnnzooError(f"{model} is an image, but the first argument is the model (a registered name or a "
                          f"weights file): cnnzoo {command} MODEL IMAGE ...")
    if os.path.isfile(model) and not weights:
        net, used = create_model_with_weights(None, model, command), model
    else:
        info = model_info(model)
        used = weights or (info.pretrained[0] if info.pretrained else None)
        if used is None and not allow_random:
            raise CnnzooError(f"{model} has no pretrained weights; pass --weights FILE (a trained model)")
        if used is None:
            print(f"{model} has no pretrained weights and none were given: showing its random initialisation",
                  file=sys.stderr)
            net, used = create_model(model), "random initialisation"
        else:
            net = create_model_with_weights(model, used, command)
    net.eval()
    spec = getattr(net, "pretrained_weights", None)
    prep = spec.preprocessing if spec is not None else preprocessing_for(net)
    names = spec.categories if spec is not None and len(spec.categories) == net.num_classes else \
        getattr(net, "class_names", None) or class_names(net.num_classes)
    return Loaded(net, prep, tuple(names), str(used))


def trained_with_data(model: str, weights: str, data: str, data_root: str | None = None):
    """``data`` as ``model`` with ``weights`` sees it: the dataset, the model in eval mode with the weights
    loaded (its head fitted to the data's classes where it is not a run trained on them), and the pipeline."""
    from ..training.config import TrainConfig
    from ..training.fit import load_pretrained, prepare_data

    cfg = TrainConfig(model=model, data=data, data_root=data_root, weights=weights, augment=(), device="cpu")
    dataset = prepare_data(cfg)
    net, pipeline = load_pretrained(cfg, dataset)
    return dataset, net.eval(), pipeline


def gather_images(paths: Sequence[str]) -> tuple[list[Path], set[Path], int]:
    """The image files among ``paths``, those of them found in folders, and how many other files the folders held.

    A folder gives its files with image suffixes (sorted, recursively); a file is kept as given, so that a bad one
    is reported by name."""
    from ..datasets.readers import IMAGE_SUFFIXES

    files: list[Path] = []
    in_folders: set[Path] = set()
    skipped = 0
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                if f.suffix.lower() in IMAGE_SUFFIXES:
                    files.append(f)
                    in_folders.add(f)
                else:
                    skipped += 1
        else:
            files.append(p)
    if not files:
        raise CnnzooError(f"no image files in {', '.join(paths)}")
    return files, in_folders, skipped


def read_images(files: Sequence[Path], prep: Preprocessing, in_chans: int, in_folders: set[Path] = frozenset()
                ) -> tuple[list[Path], Tensor, list[str], int]:
    """The files that read, as one preprocessed ``N x C x H x W`` batch; one line per named file that did not, and
    the count of the files from folders that did not (skipped)."""
    from ..preprocess import ImageError, load_and_preprocess

    kept, tensors, errors, skipped = [], [], [], 0
    for f in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                tensors.append(load_and_preprocess(f, prep, in_chans))
            kept.append(f)
        except (ImageError, Image.DecompressionBombWarning) as exc:
            if f in in_folders:
                skipped += 1
            else:
                errors.append(str(exc))
    return kept, (torch.cat(tensors) if tensors else torch.empty(0)), errors, skipped


def denormalise(x: Tensor, prep: Preprocessing) -> Tensor:
    """A preprocessed batch back to displayable ``N x H x W x 3`` values in [0, 1] (grey repeated to RGB)."""
    from ..preprocess import _per_channel

    c = x.shape[1]
    mean = torch.tensor(_per_channel(prep.mean, c)).view(1, -1, 1, 1)
    std = torch.tensor(_per_channel(prep.std, c)).view(1, -1, 1, 1)
    img = (x.detach().cpu().float() * std + mean).clamp(0, 1)
    if c == 1:
        img = img.repeat(1, 3, 1, 1)
    return img[:, :3].permute(0, 2, 3, 1)


def parse_target(text: str | None, names: Sequence[str]) -> int | None:
    """``--target``: a class index or a class name (case-insensitive)."""
    if text is None:
        return None
    if text.isdigit():
        if int(text) >= len(names):
            raise CnnzooError(f"--target {text}: the model has {len(names)} classes (0..{len(names) - 1})")
        return int(text)
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    import difflib

    close = difflib.get_close_matches(text.lower(), lowered, n=3)
    hint = f" (did you mean {', '.join(names[lowered.index(c)] for c in close)}?)" if close else ""
    raise CnnzooError(f"--target {text!r} is neither a class index nor one of the model's class names{hint}")
