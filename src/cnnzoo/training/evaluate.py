"""Evaluating checkpoints on a test set, alone and as an ensemble (averaged softmax: AlexNet's lesson)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import CnnzooError
from ..registry import create_model
from .augment import BatchPipeline
from .checkpoint import load_checkpoint
from .trainer import metrics_from_probs, pick_device, predict


def load_trained(path: Path, device: torch.device) -> tuple[Any, dict[str, Any]]:
    """A model and its checkpoint (for the data pipeline and config) from a cnnzoo training checkpoint.

    An int8 file of ``cnnzoo quantize`` gives its :class:`~cnnzoo.runtime.quantize.QuantizedModel` and the
    config and pipeline of the checkpoint it was made from.
    """
    from ..runtime.quantize import is_quantized_file, load_quantized

    if is_quantized_file(path):
        q = load_quantized(path)
        return q, {"config": q.meta["config"], "pipeline": q.meta["pipeline"], "model_name": q.meta["model_name"],
                   "model_args": q.meta["model_args"]}
    ckpt = load_checkpoint(path)
    model = create_model(ckpt["model_name"], **ckpt["model_args"])
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), ckpt


def evaluate_checkpoints(paths: list[Path], data: str | None = None, data_root: str | None = None,
                         tta: str | None = None, batch_size: int = 512, device: str = "auto", engine: str = "eager",
                         log: Callable[[str], None] | None = None, precision: str = "fp32",
                         explain: int = 0) -> list[dict[str, Any]]:
    """Top-1/top-5 of each checkpoint on the test set; with several, a last row for their ensemble.

    ``engine`` (see :func:`cnnzoo.runtime.build_engine`) runs each model's forward passes, test-time
    augmentations included; ``log`` gets each engine's one line. ``explain``: for each checkpoint, its
    confusions explained (:mod:`cnnzoo.explain.mistakes`) in a folder beside it, named in the row.
    """
    dev = pick_device(device)
    loaded = [load_trained(p, dev) for p in paths]
    if explain:
        from ..explain.methods import require_libraries

        require_libraries()
        for path, (model, _) in zip(paths, loaded):
            if not isinstance(model, torch.nn.Module):
                raise CnnzooError(f"--explain needs the gradients of a PyTorch checkpoint; {path} is an int8 file: "
                                  "give the checkpoint it was made from")
    configs = {(ck["config"]["data"], tuple(ck["config"].get("classes") or ())) for _, ck in loaded}
    if data is None and len(configs) > 1:
        raise CnnzooError("these checkpoints were trained on different datasets or classes; say which with --data")
    from .config import TrainConfig
    from .fit import prepare_data

    first = loaded[0][1]["config"]
    cfg = TrainConfig.from_dict({**first, "data": data or first["data"],
                                 "data_root": data_root or (first.get("data_root") if not data else None),
                                 "limit_per_class": None, "limit_train": None})
    dataset = prepare_data(cfg)  # the same classes (relabelled) as in training
    spec = cfg.data
    images, labels = dataset.test_images.to(dev), dataset.test_labels.to(dev)
    results, all_probs = [], []
    for path, (model, ck) in zip(paths, loaded):
        if model.num_classes != dataset.num_classes:
            raise CnnzooError(f"{path} predicts {model.num_classes} classes but {spec} has {dataset.num_classes}")
        p = ck["pipeline"]
        pipeline = BatchPipeline(tuple(p["mean"]), tuple(p["std"]), p["size"], p["fit"])
        probs = predict(_forward(model, images, pipeline, batch_size, engine, dev, log, precision), images, pipeline,
                        batch_size, tta)
        all_probs.append(probs)
        results.append({"name": str(path), **metrics_from_probs(probs, labels, dataset.num_classes)})
        if explain:
            from ..explain.mistakes import explain_confusions

            folder = path.parent / ("explain" if path.name == "best.pt" else f"explain-{path.stem}")
            results[-1]["explain"] = explain_confusions(
                model, images, labels, probs, pipeline, list(dataset.classes), explain, folder,
                f"{ck['model_name']} ({path}) on {spec}: its confusions, explained")
    if len(all_probs) > 1:
        ens = torch.stack(all_probs).mean(0)
        results.append({"name": f"ensemble of {len(all_probs)}", **metrics_from_probs(ens, labels, dataset.num_classes)})
    return results


def _forward(model: Any, images: torch.Tensor, pipeline: BatchPipeline, batch_size: int, engine: str,
             device: torch.device, log: Callable[[str], None] | None, precision: str = "fp32") -> torch.nn.Module:
    """``model``, or its engine as a module; every view of test-time augmentation has the pipeline's shape."""
    plain = isinstance(model, torch.nn.Module)
    if (engine == "eager" and precision == "fp32" and plain) or not len(images):
        return model
    from ..runtime import EngineModule, build_engine

    shape = tuple(pipeline(images[:1]).shape[1:])
    run = build_engine(model, shape, engine=engine if plain or engine != "eager" else "auto", precision=precision,
                       device=device if plain else "cpu", batch_size=min(batch_size, len(images)), log=log)
    return model if run.name == "eager" and run.precision == "fp32" and plain else EngineModule(run)
