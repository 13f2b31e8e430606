"""``cnnzoo features``: pooled activations of one layer for a dataset, saved with the labels as ``.npz``."""

from __future__ import annotations

import argparse
import time

from ..argtypes import csv, device, positive_int
from ..runtime import ENGINE_HELP, ENGINES, PRECISION_HELP, PRECISIONS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("features", help="pooled activations of a layer for a dataset, with labels (.npz)",
                       description="Run --data through MODEL with --weights and save each image's pooled "
                                   "activations of --layer (global average pool of a feature map).")
    p.add_argument("model", help="registered model name (see `cnnzoo list`)")
    p.add_argument("--weights", required=True,
                   help="a cnnzoo checkpoint, a .safetensors or .pth file, a tag such as imagenet, or an int8 file "
                        "of `cnnzoo quantize`")
    p.add_argument("--data", required=True, help="dataset (as for `cnnzoo train --data`)")
    p.add_argument("--data-root")
    p.add_argument("--layer", default="pre_logits",
                   help="pre_logits (the classifier's input), features (the last feature map), or a module's "
                        "dotted name such as layer3 or classifier.4 (default pre_logits)")
    p.add_argument("--out", default="feats.npz", help="output file (default feats.npz)")
    p.add_argument("--split", choices=["train", "test", "both"], default="both")
    p.add_argument("--classes", type=csv(int), default=(), metavar="A,B",
                   help="keep only these classes, relabelled 0..n-1")
    p.add_argument("--limit-per-class", type=positive_int, help="keep this many training images per class")
    p.add_argument("--batch-size", type=positive_int, default=256, help="images per forward pass (default 256)")
    p.add_argument("--device", type=device, default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--engine", choices=ENGINES, default="auto", help=f"{ENGINE_HELP} (default auto)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=f"{PRECISION_HELP} (default auto)")
    p.set_defaults(func=cmd_features)


def cmd_features(args: argparse.Namespace) -> int:
    from ..registry import model_info
    from ..training.config import TrainConfig
    from ..training.features import dataset_features, save_features

    model_info(args.model)
    cfg = TrainConfig(model=args.model, data=args.data, data_root=args.data_root, weights=args.weights,
                      classes=tuple(args.classes), limit_per_class=args.limit_per_class, device=args.device,
                      augment=())
    splits = ("train", "test") if args.split == "both" else (args.split,)
    t0 = time.perf_counter()
    arrays = dataset_features(cfg, args.layer, splits, args.batch_size, args.engine, print, args.precision)
    save_features(args.out, arrays)
    shapes = ", ".join(f"{s} {arrays[f'{s}_features'].shape[0]} x {arrays[f'{s}_features'].shape[1]}" for s in splits)
    print(f"{args.layer} of {args.model}: {shapes} in {time.perf_counter() - t0:.1f} s -> {args.out} "
          f"(arrays {', '.join(arrays)})")
    return 0
