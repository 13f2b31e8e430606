"""``cnnzoo predict``: classify image files with a model and its weights."""

from __future__ import annotations

import argparse
import os
import sys

import torch

from ..errors import CnnzooError
from ..runtime import ENGINE_HELP, ENGINES, PRECISION_HELP, PRECISIONS
from ..argtypes import positive_int

#: below this many images ``--precision auto`` is fp32 without measuring: measuring times each candidate for about
#: a second (``runtime.build.MEASURE_SECONDS``), more than a few images take
AUTO_MIN_IMAGES = 64


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="classify image files: top-k classes with probabilities")
    p.add_argument("model", help="registered model name (see `cnnzoo list`), a weights file that records its "
                                 "model (a run's best.pt, a model.save file), or an int8 file of `cnnzoo quantize`")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format Pillow reads)")
    p.add_argument("--weights", help="a registered tag such as 'imagenet', or a weights file "
                                     "(default: the model's pretrained weights, where it has some)")
    p.add_argument("--topk", type=positive_int, default=5, help="how many classes to show (default: 5)")
    p.add_argument("--batch-size", type=positive_int, default=32, help="images per forward pass (default 32)")
    p.add_argument("--engine", choices=ENGINES, default="eager",
                   help=f"{ENGINE_HELP} (default eager: for a few images an export costs more than it saves)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help=f"{PRECISION_HELP} (default auto; fp32 below {AUTO_MIN_IMAGES} images, where measuring costs "
                        "more than it saves)")
    p.set_defaults(func=cmd_predict)



def cmd_predict(args: argparse.Namespace) -> int:
    from ..preprocess import class_names, preprocessing_for
    from ..datasets.readers import IMAGE_SUFFIXES
    from ..registry import create_model_with_weights, model_info

    if os.path.splitext(args.model)[1].lower() in IMAGE_SUFFIXES:
        raise CnnzooError(f"{args.model} is an image, but the first argument is the model (a registered name or "
                          "a weights file): cnnzoo predict MODEL IMAGE ...")
    from ..runtime.quantize import is_quantized_file

    if is_quantized_file(args.model):
        return _predict_quantized(args)
    if os.path.isfile(args.model) and not args.weights:  # `cnnzoo predict runs/x/best.pt photo.jpg`
        model = create_model_with_weights(None, args.model, "predict").eval()
    else:
        info = model_info(args.model)
        weights = args.weights or (info.pretrained[0] if info.pretrained else None)
        if weights is None:
            raise CnnzooError(f"{args.model} has no pretrained weights; pass --weights FILE (a trained model)")
        model = create_model_with_weights(args.model, weights, "predict").eval()
    spec = getattr(model, "pretrained_weights", None)
    prep = spec.preprocessing if spec is not None else preprocessing_for(model)
    names = spec.categories if spec is not None and len(spec.categories) == model.num_classes else \
        getattr(model, "class_names", None) or class_names(model.num_classes)
    return _print_predictions(model, prep, names, model.num_classes, model.in_chans, args)


def _predict_quantized(args: argparse.Namespace) -> int:
    """An int8 file: its recorded preprocessing and class names, run in ONNX Runtime or OpenVINO."""
    from ..preprocess import class_names
    from ..pretrained import Preprocessing
    from ..runtime.quantize import load_quantized

    if args.weights:
        raise CnnzooError(f"{args.model} is an int8 model with its weights inside; leave --weights out")
    model = load_quantized(args.model)
    prep = Preprocessing(**{k: tuple(v) if isinstance(v, list) else v for k, v in model.meta["preprocessing"].items()})
    names = model.meta.get("class_names") or class_names(model.num_classes)
    return _print_predictions(model, prep, names, model.num_classes, model.input_shape[0], args)


def _print_predictions(model, prep, names, num_classes: int, in_chans: int, args: argparse.Namespace) -> int:
    from ..preprocess import ImageError, load_and_preprocess

    k = min(args.topk, num_classes)

    loaded: list[torch.Tensor | ImageError] = []
    for path in args.images:
        try:
            loaded.append(load_and_preprocess(path, prep, in_chans))
        except ImageError as exc:
            loaded.append(exc)
    probs = iter(_probabilities(model, [x for x in loaded if isinstance(x, torch.Tensor)], args))
    failed = 0
    for path, item in zip(args.images, loaded):
        if isinstance(item, ImageError):
            sys.stdout.flush()  # keep the error in place among the predictions when both go to one stream
            print(f"cnnzoo: error: {item}", file=sys.stderr)
            failed += 1
            continue
        top = next(probs).topk(k)
        print(path)
        for rank, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
            print(f"  {rank}. {names[i]:<28} {100 * p:6.2f}%")
    return 2 if failed else 0


def _probabilities(model, images: list[torch.Tensor], args: argparse.Namespace) -> torch.Tensor:
    """Softmax of each preprocessed ``1 x C x H x W`` image, in batches through ``args.engine``."""
    if not images:
        return torch.empty(0)
    from ..runtime import build_engine, to_stderr

    batch = torch.cat(images)
    engine = "auto" if args.engine == "eager" and not isinstance(model, torch.nn.Module) else args.engine
    precision = args.precision
    if precision == "auto" and isinstance(model, torch.nn.Module) and len(batch) < AUTO_MIN_IMAGES:
        precision = "fp32"  # measuring the candidates would cost more than the few images take
    run = build_engine(model, tuple(batch.shape[1:]), engine=engine, precision=precision,
                       batch_size=min(args.batch_size, len(batch)), log=to_stderr)
    return torch.cat([run(batch[i:i + args.batch_size]).softmax(dim=1)
                      for i in range(0, len(batch), args.batch_size)])


