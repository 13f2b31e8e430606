"""``cnnzoo quantize``: an int8 model calibrated on the user's own images, kept only if it keeps its accuracy."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .. import argtypes
from ..errors import CnnzooError


def register(sub: argparse._SubParsersAction) -> None:
    from ..runtime.quantize import DEFAULT_CALIBRATION, DEFAULT_MAX_DROP

    p = sub.add_parser("quantize", help="an int8 ONNX model calibrated on your training images (ONNX Runtime, OpenVINO)",
                       description="Post-training static quantization of a trained model: per-channel int8 weights "
                                   "and uint8 activations calibrated on training images, through ONNX Runtime's "
                                   "quantizer (a QDQ file that ONNX Runtime and OpenVINO run). Top-1 of fp32 and "
                                   "int8 on the held-out images is printed; above --max-drop nothing is written.")
    p.add_argument("model", help="a training checkpoint (a run's best.pt), or a registered model name with --weights")
    p.add_argument("--weights", help="the training checkpoint, when MODEL is a name")
    p.add_argument("--data", help="dataset to calibrate and measure on (default: the checkpoint's own)")
    p.add_argument("--data-root", help="folder holding the dataset's files (default: the data cache)")
    p.add_argument("--calibration", type=argtypes.positive_int, default=DEFAULT_CALIBRATION, metavar="N",
                   help=f"training images to calibrate on, drawn at random (default {DEFAULT_CALIBRATION})")
    p.add_argument("--test-limit", type=argtypes.positive_int, metavar="N",
                   help="measure on the first N held-out images (default: all of them)")
    p.add_argument("--max-drop", type=float, default=DEFAULT_MAX_DROP, metavar="POINTS",
                   help=f"the most top-1 points int8 may lose against fp32 (default {DEFAULT_MAX_DROP})")
    p.add_argument("--seed", type=int, default=0, help="the draw of calibration images (default 0)")
    p.add_argument("--out", required=True, type=_onnx_out, metavar="FILE.onnx", help="the int8 model to write")
    p.set_defaults(func=cmd_quantize)


def _onnx_out(text: str) -> str:
    if not text.lower().endswith(".onnx"):
        raise argparse.ArgumentTypeError(f"{text!r}: an int8 model is an ONNX file; give a name ending in .onnx")
    parent = Path(text).parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"the folder {str(parent)!r} does not exist; create it first")
    return text


def cmd_quantize(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from ..pretrained import Preprocessing
    from ..runtime.build import to_stderr
    from ..runtime.quantize import quantize
    from ..training.augment import BatchPipeline
    from ..training.config import TrainConfig
    from ..training.evaluate import load_trained
    from ..training.fit import prepare_data

    path = _checkpoint_path(args)
    model, ckpt = load_trained(path, torch.device("cpu"))
    config = ckpt["config"]
    cfg = TrainConfig.from_dict({**config, "data": args.data or config["data"],
                                 "data_root": args.data_root or (config.get("data_root") if not args.data else None),
                                 "limit_per_class": None, "limit_train": None})
    data = prepare_data(cfg)
    if data.num_classes != model.num_classes:
        raise CnnzooError(f"{path} predicts {model.num_classes} classes but {cfg.data} has {data.num_classes}; "
                          "calibrate on the data it was trained on (leave --data out)")
    p = ckpt["pipeline"]
    pipeline = BatchPipeline(tuple(p["mean"]), tuple(p["std"]), p["size"], p["fit"])
    g = torch.Generator().manual_seed(args.seed)
    pick = torch.randperm(len(data.train_images), generator=g)[:args.calibration]
    test_images, test_labels = data.test_images, data.test_labels
    if args.test_limit:
        test_images, test_labels = test_images[:args.test_limit], test_labels[:args.test_limit]
    side = p["size"] or data.image_shape[-1]  # the graph's fixed input: what predict must resize a photo to
    prep = Preprocessing(resize=side, crop=side, mean=tuple(p["mean"]), std=tuple(p["std"]))
    meta = {"model_name": ckpt["model_name"], "model_args": ckpt["model_args"], "num_classes": model.num_classes,
            "class_names": list(ckpt.get("classes") or data.classes), "config": config, "pipeline": p,
            "preprocessing": dataclasses.asdict(prep), "source": os.fspath(path)}
    result = quantize(model, pipeline, data.train_images[pick], test_images, test_labels, args.out, meta=meta,
                      max_drop=args.max_drop, log=to_stderr)
    line = (f"top-1 on {result.n_test:,} held-out images of {cfg.data}: fp32 {result.fp32_top1:.4f}, "
            f"int8 {result.int8_top1:.4f} (drop {result.drop:+.2f} points)")
    if not result.written:
        raise CnnzooError(f"{line}: above --max-drop {args.max_drop:g}, so nothing was written; try more calibration "
                          f"images (--calibration {max(1000, 2 * args.calibration)}), another draw (--seed), or a "
                          "larger --max-drop")
    print(line)
    print(f"wrote {args.out}: {result.size_int8 / 1e6:.2f} MB (fp32 {result.size_fp32 / 1e6:.2f} MB); run it with "
          f"`cnnzoo predict {args.out} IMAGE`, `cnnzoo eval {args.out}` or `cnnzoo benchmark {args.out} "
          "--precision int8`")
    return 0


def _checkpoint_path(args: argparse.Namespace) -> Path:
    from ..registry import model_info

    if args.weights:
        model_info(args.model)  # an unknown name says so first
        path = Path(args.weights)
    else:
        path = Path(args.model)
    if path.suffix.lower() == ".onnx":
        raise CnnzooError(f"{path} is already an ONNX model; quantize the training checkpoint it came from")
    if not path.is_file():
        if not args.weights and not os.sep in args.model and not path.suffix:
            raise CnnzooError(f"quantize needs a trained model: give a run's checkpoint (cnnzoo quantize "
                              f"runs/x/best.pt) or {args.model} --weights runs/x/best.pt")
        raise CnnzooError(f"{path}: no such file; give a training checkpoint such as runs/x/best.pt")
    return path
