"""``cnnzoo detect``: torchvision detectors on any zoo backbone — train, evaluate, predict."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CnnzooError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="object detection on any backbone (torchvision's Faster R-CNN, RetinaNet, "
                                      "FCOS): train, evaluate, predict")
    dsub = p.add_subparsers(dest="detect_command", metavar="ACTION", required=True, parser_class=type(p))
    t = dsub.add_parser("train", help="train a detector on a VOC-layout folder or a COCO file",
                        description="Train a torchvision detector (--head fasterrcnn, retinanet or fcos) on BACKBONE "
                                    "(any registered model, its stages under a feature pyramid). --data: a PASCAL "
                                    "VOC-layout folder (Annotations/*.xml, ImageSets/Main/{train,val}.txt, "
                                    "labels.txt) or a COCO JSON file whose held-out twin has 'val' for 'train' in "
                                    "its name. The final weights are evaluated on the held-out split (COCO mAP "
                                    "and mAP@0.5).")
    from .segment import add_dense_flags

    add_dense_flags(t, "detection")
    t.set_defaults(func=cmd_train)
    e = dsub.add_parser("evaluate", help="COCO mAP and mAP@0.5 of a trained detector")
    e.add_argument("checkpoint", help="a run's last.pt (or its run folder)")
    e.add_argument("--data", required=True, help="a VOC-layout folder (its --split) or a COCO JSON file")
    e.add_argument("--split", default="val", help="VOC folders: the ImageSets/Main list (default val)")
    e.set_defaults(func=cmd_evaluate)
    r = dsub.add_parser("predict", help="detect objects and draw their boxes with class and score")
    r.add_argument("checkpoint", help="a run's last.pt (or its run folder)")
    r.add_argument("images", nargs="+", help="image files")
    r.add_argument("--out", required=True, help="folder for the pictures (NAME.boxes.png)")
    r.add_argument("--min-score", type=float, default=0.5, help="draw detections of at least this score "
                                                                "(default 0.5)")
    r.set_defaults(func=cmd_predict)


def cmd_train(args: argparse.Namespace) -> int:
    from ..dense.fit import config_from_args, detection_task, fit_dense
    from ..registry import model_info

    model_info(args.backbone)
    if args.head is None:
        args.head = "fasterrcnn"
    fit_dense(config_from_args(args, "detection"), detection_task, resume=args.resume, overwrite=args.overwrite)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from ..datasets.dense import load_coco, load_voc_detection
    from ..dense.detection import load_detector
    from ..dense.fit import detect, detection_metrics
    from .segment import checkpoint_path

    det, meta = load_detector(checkpoint_path(args.checkpoint))
    path = Path(args.data)
    data = load_voc_detection(path, args.split) if path.is_dir() else load_coco(path)
    if list(data.classes[1:]) != meta["classes"][1:]:
        raise CnnzooError(f"{args.data} names other classes than the checkpoint's ({', '.join(meta['classes'][1:4])}, "
                          "...)")
    m = detection_metrics(detect(det, data.images), data.boxes, data.labels)
    print(f"{args.data}: {len(data.images)} images, {sum(len(b) for b in data.boxes)} objects")
    print(f"mAP@0.5 {m['map_50']:.4f}   COCO mAP (0.5:0.95) {m['map']:.4f}   mAP@0.75 {m['map_75']:.4f}")
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..dense.detection import load_detector
    from ..dense.fit import detect
    from ..dense.visual import draw_boxes
    from ..preprocess import load_image
    from .segment import checkpoint_path

    det, meta = load_detector(checkpoint_path(args.checkpoint))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    classes = meta["classes"]
    for name in args.images:
        image = np.asarray(load_image(name, 3))
        found = detect(det, torch.from_numpy(image.copy()).permute(2, 0, 1)[None])[0]
        keep = found["scores"] >= args.min_score
        boxes, labels, scores = found["boxes"][keep], found["labels"][keep], found["scores"][keep]
        stem = Path(name).stem
        draw_boxes(image, boxes.tolist(), labels.tolist(), scores.tolist(), classes).save(out / f"{stem}.boxes.png")
        listed = ", ".join(f"{classes[int(lab)]} {s:.2f}" for lab, s in zip(labels, scores))
        print(f"{name}: {listed or f'nothing at score >= {args.min_score}'} -> {out / (stem + '.boxes.png')}")
    return 0
