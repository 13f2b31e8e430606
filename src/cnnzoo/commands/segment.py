"""``cnnzoo segment``: FCN semantic segmentation on any zoo backbone — train, evaluate, predict, export."""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, fields
from pathlib import Path

from .. import argtypes
from ..errors import CnnzooError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("segment", help="FCN semantic segmentation on any backbone: train, evaluate, predict, export")
    ssub = p.add_subparsers(dest="segment_command", metavar="ACTION", required=True, parser_class=type(p))
    t = ssub.add_parser("train", help="train an FCN-32s/16s/8s on a VOC-layout folder",
                        description="Train an FCN on BACKBONE (any registered model) from a PASCAL VOC-layout folder "
                                    "(JPEGImages/, SegmentationClass/ PNG masks, ImageSets/Segmentation/"
                                    "{train,val}.txt, labels.txt); `cnnzoo data scenes` writes one. The final "
                                    "weights are evaluated on the val split.")
    add_dense_flags(t, "segmentation")
    t.set_defaults(func=cmd_train)
    e = ssub.add_parser("evaluate", help="pixel accuracy, mean IoU and per-class IoU of a trained segmenter")
    e.add_argument("checkpoint", help="a run's last.pt (or its run folder)")
    e.add_argument("--data", required=True, help="a VOC-layout folder")
    e.add_argument("--split", default="val", help="the ImageSets/Segmentation list to evaluate (default val)")
    e.set_defaults(func=cmd_evaluate)
    r = ssub.add_parser("predict", help="segment images and write coloured mask overlays")
    r.add_argument("checkpoint", help="a run's last.pt (or its run folder)")
    r.add_argument("images", nargs="+", help="image files")
    r.add_argument("--out", required=True, help="folder for the overlays (NAME.overlay.png: enlarged where small, "
                                                "with a colour legend) and masks (NAME.mask.png, class indices)")
    r.set_defaults(func=cmd_predict)
    x = ssub.add_parser("export", help="export a trained segmenter to ONNX, checked against PyTorch")
    x.add_argument("checkpoint", help="a run's last.pt (or its run folder)")
    x.add_argument("--out", required=True, help="the .onnx file to write")
    x.add_argument("--size", type=argtypes.positive_int, help="the example input's side (default: the training "
                                                              "images')")
    x.set_defaults(func=cmd_export)


def add_dense_flags(p: argparse.ArgumentParser, task: str) -> None:
    """BACKBONE, --config, --resume, --overwrite and a flag for each :class:`~cnnzoo.dense.fit.DenseConfig`
    setting."""
    from ..dense.config import DenseConfig

    p.add_argument("backbone", help="registered model name (see `cnnzoo list`)")
    p.add_argument("--config", metavar="FILE", help="a TOML, YAML or JSON file of settings (the flags' names with _ "
                                                    "for -, e.g. lr = 0.002; a run's config.json works); flags given "
                                                    "on the command line win")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out holds")
    p.add_argument("--no-progress", dest="progress", action="store_false", help=argparse.SUPPRESS)
    hints = typing.get_type_hints(DenseConfig)
    for f in fields(DenseConfig):
        if f.metadata.get("scope") == "none":
            continue
        hint = hints[f.name]
        kind = next((a for a in typing.get_args(hint) if a is not type(None)), hint)
        kind = typing.get_origin(kind) or kind
        default = f.default if f.default is not MISSING else None
        if f.name == "head" and task == "detection":
            default = "fasterrcnn"
        text = f.metadata.get("help", "") + (f" (default: {default})" if default not in (None, "") else "")
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif kind is tuple:
            p.add_argument(flag, type=argtypes.csv(float if f.name == "milestones" else str), default=None,
                           metavar="A,B", help=text)
        else:
            required = " (required, here or in --config)" if f.name == "data" else ""
            p.add_argument(flag, type=kind, default=None, help=text + required)


def cmd_train(args: argparse.Namespace) -> int:
    from ..dense.fit import config_from_args, fit_dense, segmentation_task
    from ..registry import model_info

    model_info(args.backbone)
    fit_dense(config_from_args(args, "segmentation"), segmentation_task, resume=args.resume,
              overwrite=args.overwrite)
    return 0


def checkpoint_path(text: str) -> Path:
    """A run folder's ``last.pt``, or the file given."""
    path = Path(text)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise CnnzooError(f"no checkpoint at {path}; give a run's last.pt or its folder")
    return path


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..datasets.dense import load_voc_segmentation
    from ..dense.fit import segment
    from ..dense.metrics import confusion_matrix, segmentation_metrics
    from ..dense.segmentation import load_segmenter

    seg, meta = load_segmenter(checkpoint_path(args.checkpoint))
    data = load_voc_segmentation(args.data, args.split, classes=tuple(meta["classes"]))
    if data.classes != tuple(meta["classes"]):
        raise CnnzooError(f"{args.data} names other classes than the checkpoint's ({', '.join(meta['classes'][:4])}, "
                          "...)")
    pred = segment(seg, data.images, tuple(meta["mean"]), tuple(meta["std"]))
    m = segmentation_metrics(confusion_matrix(pred, data.masks, seg.num_classes), data.classes)
    print(f"{args.data} {args.split}: {len(data.images)} images, {m['pixels']:,} labelled pixels")
    print(f"pixel accuracy {m['pixel_accuracy']:.4f}   mean IoU {m['mean_iou']:.4f}")
    for name, iou in m["per_class_iou"].items():
        print(f"  {name:<14} IoU {'—' if iou is None else f'{iou:.4f}'}")
    return 0


def read_images(names: list[str], out: Path) -> "typing.Iterator[tuple[str, str, typing.Any, typing.Any]]":
    """For each image file: its name, stem, ``H x W x 3`` uint8 array and ``1 x 3 x H x W`` uint8 tensor; ``out``
    (the pictures' folder) is made first. What ``segment predict`` and ``detect predict`` share."""
    import numpy as np
    import torch

    from ..preprocess import load_image

    out.mkdir(parents=True, exist_ok=True)
    for name in names:
        image = np.asarray(load_image(name, 3))
        yield name, Path(name).stem, image, torch.from_numpy(image.copy()).permute(2, 0, 1)[None]


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ..dense.fit import segment
    from ..dense.segmentation import load_segmenter
    from ..dense.visual import mask_image, overlay_picture

    seg, meta = load_segmenter(checkpoint_path(args.checkpoint))
    out = Path(args.out)
    classes = meta["classes"]
    for name, stem, image, batch in read_images(args.images, out):
        pred = segment(seg, batch, tuple(meta["mean"]), tuple(meta["std"]))[0].numpy().astype(np.uint8)
        overlay_picture(image, pred, classes).save(out / f"{stem}.overlay.png")
        mask_image(pred).save(out / f"{stem}.mask.png")
        counts = np.bincount(pred.ravel(), minlength=len(classes))
        found = ", ".join(f"{classes[c]} {counts[c] / pred.size:.0%}" for c in np.argsort(-counts) if counts[c] and c)
        print(f"{name}: {found or 'background only'} -> {out / (stem + '.overlay.png')}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import os

    import torch

    from ..dense.segmentation import load_segmenter
    from ..runtime.export import TOLERANCE, export, load_exported, verify

    seg, meta = load_segmenter(checkpoint_path(args.checkpoint))
    seg.eval()
    out = Path(args.out)
    if out.is_dir():
        raise CnnzooError(f"--out {out} is a folder; give a file name such as segmenter.onnx")
    h, w = (args.size, args.size) if args.size else meta["image_size"]
    shape = (seg.in_chans, h, w)
    tmp = out.with_name(f".{out.name}.unverified.onnx")
    try:
        export(seg, torch.randn(2, *shape), tmp, "onnx")
        diff, scale = verify(seg, load_exported(tmp, "onnx"), shape, batch=3)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{seg.head} on {seg.backbone_name} -> {out}: onnx, {out.stat().st_size / 1e6:.1f} MB, input N x "
          f"{' x '.join(map(str, shape))} (dynamic batch), output N x {seg.num_classes} x {h} x {w}")
    print(f"verified: ONNX Runtime vs eager PyTorch on a batch of 3: max abs diff {diff:.2e} (tolerance "
          f"{TOLERANCE:g} x score scale {scale:.3g})")
    return 0
