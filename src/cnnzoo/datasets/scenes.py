"""``fashion-scenes``: a small segmentation and detection dataset made offline from real Fashion-MNIST items.

What it is: each scene is a canvas (96 x 96 by default) of dark, noisy background on which 1 to
``max_items`` Fashion-MNIST items are pasted at random positions and scales, each tinted with a random
colour. Training scenes use items of Fashion-MNIST's training split, validation scenes items of its test
split, so no item is seen in both. Every pixel's class comes from the item it shows: ``label + 1`` where the
item's (resized) intensity is above ``threshold``, 0 (background) where no item is, and 255 (ignore) on the
faint rim between ``rim`` and ``threshold``, whose class is ambiguous. Each item's box is the tight box of
its pixels above ``threshold``. Items overlap their neighbours' boxes by at most ``max_overlap`` IoU and
the later item is drawn on top.

What it is not: photographs. There is no perspective, lighting, clutter or context, the objects are
grey-level silhouettes of ten clothing types, and the masks follow the item's intensity, not a human
annotator's outline; figures on it say how a method behaves, not how it does on PASCAL VOC or COCO.

The scenes are written in the layouts the readers of :mod:`cnnzoo.datasets.dense` take, so the same
readers are tested on them: PASCAL VOC (``JPEGImages/``, ``SegmentationClass/`` palette PNGs,
``Annotations/`` XML, ``ImageSets/{Segmentation,Main}/{train,val}.txt``, ``labels.txt``) and COCO
(``annotations/instances_{train,val}.json``). Deterministic by seed: scene ``i`` of a split depends on
``(seed, split, i)`` only, so asking for more scenes keeps the first ones.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import numpy as np

from ..errors import CnnzooError
from .readers import FASHION_CLASSES, load_idx_dataset

IGNORE = 255
SPLITS = ("train", "val")


@dataclass(frozen=True)
class SceneSpec:
    """The generator's settings (``cnnzoo data scenes --help`` describes each)."""

    size: int = 96
    max_items: int = 4
    min_scale: float = 0.9
    max_scale: float = 1.7
    threshold: int = 50
    rim: int = 10
    max_overlap: float = 0.2
    seed: int = 0

    def check(self) -> None:
        rules = [("size", self.size >= 32, "at least 32"), ("max_items", self.max_items >= 1, "at least 1"),
                 ("min_scale", 0 < self.min_scale <= self.max_scale, "positive and at most --max-scale"),
                 ("max_scale", round(28 * self.max_scale) <= self.size, f"at most {self.size / 28:.2f} (items "
                                                                         "must fit the canvas)"),
                 ("threshold", 0 < self.threshold < 255, "in 1..254"), ("rim", 0 <= self.rim <= self.threshold,
                                                                        "in 0..threshold"),
                 ("max_overlap", 0 <= self.max_overlap <= 1, "in [0, 1]")]
        for name, ok, rule in rules:
            if not ok:
                raise CnnzooError(f"--{name.replace('_', '-')} must be {rule}, got {getattr(self, name)}")


@dataclass
class Scene:
    image: np.ndarray  # H x W x 3 uint8
    mask: np.ndarray  # H x W uint8: 0 background, 1..10 items, 255 ignore
    boxes: list[tuple[int, int, int, int]]  # x0, y0, x1, y1; x1 and y1 exclusive
    labels: list[int]  # 1..10


def voc_palette() -> list[int]:
    """PASCAL VOC's 256-colour palette (index 255, ignore, is cream), as a flat list for ``putpalette``."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def make_scene(items: np.ndarray, item_labels: np.ndarray, spec: SceneSpec, rng: np.random.Generator) -> Scene:
    """One scene from ``items`` (``N x 28 x 28`` uint8) and their labels, drawn with ``rng``."""
    import torch
    from PIL import Image
    from torchvision.ops import box_iou

    s = spec.size
    base = rng.uniform(10, 70, 3)
    ramp = np.linspace(-1, 1, s)[None, :, None] * rng.uniform(-15, 15, 3)  # a gentle horizontal gradient
    image = base + ramp + rng.normal(0, 6, (s, s, 3))
    mask = np.zeros((s, s), np.uint8)
    boxes: list[tuple[int, int, int, int]] = []
    labels: list[int] = []
    for _ in range(int(rng.integers(1, spec.max_items + 1))):
        k = int(rng.integers(len(items)))
        side = int(round(28 * rng.uniform(spec.min_scale, spec.max_scale)))
        item = np.asarray(Image.fromarray(items[k]).resize((side, side), Image.BILINEAR), np.float32)
        ys, xs = np.nonzero(item > spec.threshold)
        if len(ys) == 0:
            continue
        for _attempt in range(20):
            x, y = (int(v) for v in rng.integers(0, s - side + 1, 2))
            box = (x + int(xs.min()), y + int(ys.min()), x + int(xs.max()) + 1, y + int(ys.max()) + 1)
            if not boxes or box_iou(torch.tensor([box]), torch.tensor(boxes)).max() <= spec.max_overlap:
                break
        else:
            continue
        colour = rng.uniform(120, 255, 3)
        alpha = (item / 255.0)[:, :, None]
        window = image[y:y + side, x:x + side]
        image[y:y + side, x:x + side] = window * (1 - alpha) + colour * alpha
        region = mask[y:y + side, x:x + side]
        region[item > spec.rim] = IGNORE
        region[item > spec.threshold] = int(item_labels[k]) + 1
        boxes.append(box)
        labels.append(int(item_labels[k]) + 1)
    # an earlier item's box is kept whole where a later one covers part of it (COCO's amodal boxes)
    return Scene(np.clip(image, 0, 255).astype(np.uint8), mask, boxes, labels)


def generate(out: Path, n_train: int, n_val: int, spec: SceneSpec, items_root: Path | None = None,
             log: Any = print) -> dict[str, int]:
    """Write ``n_train`` + ``n_val`` scenes under ``out`` in the VOC and COCO layouts; returns the counts."""
    from PIL import Image

    spec.check()
    fashion = load_idx_dataset("fashion-mnist", items_root, FASHION_CLASSES)
    sources = {"train": (fashion.train_images[:, 0].numpy(), fashion.train_labels.numpy()),
               "val": (fashion.test_images[:, 0].numpy(), fashion.test_labels.numpy())}
    for sub in ("JPEGImages", "SegmentationClass", "Annotations", "ImageSets/Segmentation", "ImageSets/Main",
                "annotations"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    palette = voc_palette()
    categories = [{"id": i + 1, "name": n, "supercategory": "fashion"} for i, n in enumerate(FASHION_CLASSES)]
    counts = {}
    for split_no, (split, n) in enumerate(zip(SPLITS, (n_train, n_val))):
        items, item_labels = sources[split]
        ids, images, annotations = [], [], []
        for i in range(n):
            name = f"{split}_{i:06d}"
            scene = make_scene(items, item_labels, spec, np.random.default_rng([spec.seed, split_no, i]))
            Image.fromarray(scene.image).save(out / "JPEGImages" / f"{name}.jpg", quality=95)
            png = Image.fromarray(scene.mask, mode="P")
            png.putpalette(palette)
            png.save(out / "SegmentationClass" / f"{name}.png")
            _write_voc_xml(out / "Annotations" / f"{name}.xml", name, spec.size, scene)
            ids.append(name)
            images.append({"id": i + 1, "file_name": f"{name}.jpg", "width": spec.size, "height": spec.size})
            for box, label in zip(scene.boxes, scene.labels):
                w, h = box[2] - box[0], box[3] - box[1]
                annotations.append({"id": len(annotations) + 1, "image_id": i + 1, "category_id": label,
                                    "bbox": [box[0], box[1], w, h], "area": w * h, "iscrowd": 0})
        listing = "".join(f"{i}\n" for i in ids)
        (out / "ImageSets" / "Segmentation" / f"{split}.txt").write_text(listing)
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text(listing)
        coco = {"info": {"description": f"fashion-scenes {split}, seed {spec.seed} (see cnnzoo.datasets.scenes)"},
                "images": images, "annotations": annotations, "categories": categories}
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco))
        counts[split] = n
    (out / "labels.txt").write_text("".join(f"{c}\n" for c in ("background", *FASHION_CLASSES)))
    (out / "README.txt").write_text(__doc__.split("\n\n")[1] + "\n\n" + __doc__.split("\n\n")[2] + "\n")
    log(f"fashion-scenes -> {out}: {n_train} train + {n_val} val scenes of {spec.size}x{spec.size}, "
        f"seed {spec.seed} (VOC: JPEGImages/, SegmentationClass/, Annotations/, ImageSets/; "
        f"COCO: annotations/instances_{{train,val}}.json)")
    return counts


def _write_voc_xml(path: Path, name: str, size: int, scene: Scene) -> None:
    """VOC's annotation file; its pixel coordinates are 1-based and inclusive."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = f"{name}.jpg"
    dims = ET.SubElement(root, "size")
    for tag, value in (("width", size), ("height", size), ("depth", 3)):
        ET.SubElement(dims, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "1"
    for box, label in zip(scene.boxes, scene.labels):
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = FASHION_CLASSES[label - 1]
        ET.SubElement(obj, "difficult").text = "0"
        bnd = ET.SubElement(obj, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), (box[0] + 1, box[1] + 1, box[2], box[3])):
            ET.SubElement(bnd, tag).text = str(value)
    ET.ElementTree(root).write(path)
