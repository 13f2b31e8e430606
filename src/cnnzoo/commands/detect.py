"""``cnnzoo detect``: torchvision detectors on any zoo backbone — train, evaluate, predict, export."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import CnnzooError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("detect", help="object detection on any backbone (torchvision's Faster R-CNN, RetinaNet, "
                                      "FCOS): train, evaluate, predict, export")
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
    r.add_argument("--out", required=True, help="folder for the pictures (NAME.boxes.png, enlarged where small)")
    r.add_argument("--min-score", type=float, default=0.5, help="draw detections of at least this score "
                                                                "(default 0.5)")
    r.set_defaults(func=cmd_predict)
    x = dsub.add_parser("export", help="export a trained detector to ONNX, checked against PyTorch",
                        description="Export a trained detector to ONNX (opset 18): one 1 x 3 x H x W float image in "
                                    "[0, 1] at the training size in, boxes (K x 4), labels (K) and scores (K) out, "
                                    "K varying. The file is checked with ONNX Runtime against eager PyTorch on "
                                    "generated images (and --check-image) before it is written.")
    x.add_argument("checkpoint", help="a run's last.pt (or its run folder)")
    x.add_argument("--out", required=True, help="the .onnx file to write")
    x.add_argument("--check-image", action="append", default=[], metavar="FILE",
                   help="also compare ONNX Runtime's detections with PyTorch's on this image (repeatable)")
    x.set_defaults(func=cmd_export)


def cmd_train(args: argparse.Namespace) -> int:
    from ..dense.fit import config_from_args, detection_task, fit_dense
    from ..registry import model_info

    model_info(args.backbone)
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
    from ..dense.detection import load_detector
    from ..dense.fit import detect
    from ..dense.visual import draw_boxes
    from .segment import checkpoint_path, read_images

    det, meta = load_detector(checkpoint_path(args.checkpoint))
    out = Path(args.out)
    classes = meta["classes"]
    for name, stem, image, batch in read_images(args.images, out):
        found = detect(det, batch)[0]
        keep = found["scores"] >= args.min_score
        boxes, labels, scores = found["boxes"][keep], found["labels"][keep], found["scores"][keep]
        draw_boxes(image, boxes.tolist(), labels.tolist(), scores.tolist(), classes).save(out / f"{stem}.boxes.png")
        listed = ", ".join(f"{classes[int(lab)]} {s:.2f}" for lab, s in zip(labels, scores))
        print(f"{name}: {listed or f'nothing at score >= {args.min_score}'} -> {out / (stem + '.boxes.png')}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from ..dense.detection import load_detector
    from ..dense.export import detector_onnx, verify_detector
    from ..preprocess import load_image
    from ..weights import atomic_write
    from .segment import checkpoint_path

    det, meta = load_detector(checkpoint_path(args.checkpoint))
    out = Path(args.out)
    if out.is_dir():
        raise CnnzooError(f"--out {out} is a folder; give a file name such as detector.onnx")
    side = int(meta["image_size"])
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, side, side, generator=g),  # noise, and a smooth random picture
              torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g), (side, side), mode="bilinear")[0]]
    for name in args.check_image:
        image = load_image(name, 3)
        if image.size != (side, side):
            raise CnnzooError(f"--check-image {name} is {image.width}x{image.height}; the detector takes {side}x{side}")
        images.append(torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 255)
    data = detector_onnx(det, (side, side))
    check = verify_detector(det, data, images)
    atomic_write(out, lambda tmp: Path(tmp).write_bytes(data))
    print(f"{det.config['kind']} on {det.config['backbone']} -> {out}: onnx, {len(data) / 1e6:.1f} MB, input 1 x 3 x "
          f"{side} x {side} (float in [0, 1]), outputs boxes K x 4, labels K, scores K (K detections)")
    print(f"verified: ONNX Runtime vs eager PyTorch on {check['images']} images, {check['detections']} detections: "
          f"same count and labels, boxes and scores within {check['max_diff']:.2e} (relative)"
          + (f"; {check['ties']} swapped for another box of a tied score (NMS and top-k order ties either way)"
             if check["ties"] else ""))
    if not check["detections"]:
        print("note: no detections on the check images, so only empty outputs were compared; "
              "give --check-image a picture with objects")
    return 0
