"""Readers of the dense-prediction layouts: PASCAL VOC segmentation (PNG label masks), VOC XML boxes and COCO JSON.

One reader per format; each checks every record and names the file and what is wrong. A bad record
(a mask of another size than its image, a label outside the classes, a box outside its image, an unknown
category, an image without annotation) is the user's one-line error; in a large set where only a few
records are bad (at most :data:`SKIP_FRACTION` of them), they are skipped and counted in one warning
instead, never silently.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import torch

from ..errors import CnnzooError

IGNORE = 255
#: a set of at least SKIP_MIN records may lose this fraction of bad ones with a warning
SKIP_FRACTION = 0.02
SKIP_MIN = 50


class DatasetError(CnnzooError, ValueError):
    """A dataset file that is missing, malformed or inconsistent."""


class _NamedClasses:
    """The class count of a set that names its classes (``classes[0]``: the background)."""

    classes: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class SegmentationSet(_NamedClasses):
    """Images ``N x 3 x H x W`` uint8 and masks ``N x H x W`` uint8 (255: ignore), with class names."""

    images: torch.Tensor
    masks: torch.Tensor
    classes: tuple[str, ...]
    ids: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())


@dataclass
class DetectionSet(_NamedClasses):
    """Images ``N x 3 x H x W`` uint8 and, per image, boxes ``K x 4`` (x0, y0, x1, y1, pixels) and labels
    ``K`` (1..C; 0 is the detectors' background), with class names (``classes[0]`` is the background)."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    labels: list[torch.Tensor]
    classes: tuple[str, ...]
    ids: tuple[str, ...]
    skipped: tuple[str, ...] = field(default=())


class _Bad(Exception):
    """One bad record: the message names the file."""


def _collect(records: list, read, what: str) -> tuple[list, list[str]]:
    """``read(record)`` for each; bad records are skipped with one warning when few, else the first is the error."""
    good, bad = [], []
    for record in records:
        try:
            good.append(read(record))
        except _Bad as exc:
            bad.append(str(exc))
    if bad:
        if len(records) < SKIP_MIN or len(bad) > SKIP_FRACTION * len(records):
            more = f" (and {len(bad) - 1} more bad record(s) of {len(records)})" if len(bad) > 1 else ""
            raise DatasetError(bad[0] + more)
        warnings.warn(f"skipped {len(bad)} bad {what} record(s) of {len(records)}: {bad[0]}"
                      + (f"; and {len(bad) - 1} more" if len(bad) > 1 else ""), stacklevel=3)
    if not good:
        raise DatasetError(f"no {what} records to read")
    return good, bad


def read_classes(root: Path, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The class names of a VOC-layout folder: ``labels.txt`` (one a line, background first), else ``default``."""
    if not root.is_dir():
        raise DatasetError(f"dataset folder {root} does not exist; give a PASCAL VOC-layout folder "
                           "(`cnnzoo data scenes --out DIR` writes one)")
    path = root / "labels.txt"
    if path.is_file():
        names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
        if len(names) < 2:
            raise DatasetError(f"{path} must name the background and at least one class, one a line")
        return names
    if default is None:
        raise DatasetError(f"{root} has no labels.txt (the class names, background first, one a line); write one")
    return default


def split_ids(root: Path, split: str, task: str) -> list[str]:
    """The ids listed in ``ImageSets/<task>/<split>.txt``."""
    path = root / "ImageSets" / task / f"{split}.txt"
    if not path.is_file():
        raise DatasetError(f"{path} does not exist; is {root} a PASCAL VOC-layout folder (JPEGImages/, "
                           f"SegmentationClass/, ImageSets/{task}/{split}.txt)?")
    ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DatasetError(f"{path} lists no images")
    return ids


def _image(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise _Bad(f"{path}: image file missing")
    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != size:
                im = im.resize(size, Image.BILINEAR)
            return np.asarray(im).copy()
    except OSError as exc:
        raise _Bad(f"{path}: cannot read the image ({exc})") from None


def load_voc_segmentation(root: str | Path, split: str = "train", size: int | None = None,
                          classes: tuple[str, ...] | None = None) -> SegmentationSet:
    """A VOC-layout segmentation split: ``JPEGImages/ID.jpg`` and ``SegmentationClass/ID.png`` for each ID of
    ``ImageSets/Segmentation/SPLIT.txt``. Masks hold class indices (palette PNGs: the index, not the colour),
    255 for ignore. ``size``: resize both to ``size`` squared (the mask by nearest neighbour); without it
    every image must have the size of the first."""
    from PIL import Image

    root = Path(root)
    names = read_classes(root, classes)
    ids = split_ids(root, split, "Segmentation")
    shape: list[tuple[int, int]] = []

    def read(i: str) -> tuple[np.ndarray, np.ndarray, str]:
        img_path = _find_image(root, i)
        mask_path = root / "SegmentationClass" / f"{i}.png"
        if not mask_path.is_file():
            raise _Bad(f"{img_path}: image without annotation (no {mask_path})")
        image = _image(img_path)
        try:
            with Image.open(mask_path) as m:
                if m.mode not in ("P", "L", "I;16", "I"):
                    raise _Bad(f"{mask_path}: a label mask must be a palette or grey PNG of class indices, "
                               f"not {m.mode}")
                mask = np.asarray(m)
        except OSError as exc:
            raise _Bad(f"{mask_path}: cannot read the mask ({exc})") from None
        if mask.shape != image.shape[:2]:
            raise _Bad(f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image {img_path.name} is "
                       f"{image.shape[1]}x{image.shape[0]}")
        values = np.unique(mask)
        wrong = values[(values >= len(names)) & (values != IGNORE)]
        if len(wrong):
            raise _Bad(f"{mask_path}: label value(s) {', '.join(map(str, wrong[:5].tolist()))} outside the "
                       f"{len(names)} classes 0..{len(names) - 1} (and 255 for ignore)")
        if size is not None:
            image = np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))
            mask = np.asarray(Image.fromarray(mask.astype(np.uint8)).resize((size, size), Image.NEAREST))
        elif not shape:
            shape.append(image.shape[:2])
        elif image.shape[:2] != shape[0]:
            raise DatasetError(f"{img_path} is {image.shape[1]}x{image.shape[0]} but the split's first image is "
                               f"{shape[0][1]}x{shape[0][0]}; give a size (--image-size) to resize them all")
        return image, mask.astype(np.uint8), i

    good, bad = _collect(ids, read, f"{root.name} {split}")
    images = torch.from_numpy(np.stack([g[0] for g in good])).permute(0, 3, 1, 2).contiguous()
    masks = torch.from_numpy(np.stack([g[1] for g in good]))
    return SegmentationSet(images, masks, names, tuple(g[2] for g in good), tuple(bad))


def _find_image(root: Path, i: str) -> Path:
    for suffix in (".jpg", ".jpeg", ".png"):
        if (p := root / "JPEGImages" / f"{i}{suffix}").is_file():
            return p
    return root / "JPEGImages" / f"{i}.jpg"


def load_voc_detection(root: str | Path, split: str = "train", classes: tuple[str, ...] | None = None
                       ) -> DetectionSet:
    """A VOC-layout detection split: ``Annotations/ID.xml`` (objects' ``name`` and 1-based inclusive
    ``bndbox``) for each ID of ``ImageSets/Main/SPLIT.txt``, images from ``JPEGImages/``."""
    root = Path(root)
    names = read_classes(root, classes)
    index = {n: k for k, n in enumerate(names)}
    ids = split_ids(root, split, "Main")

    def read(i: str):
        xml = root / "Annotations" / f"{i}.xml"
        img_path = _find_image(root, i)
        if not xml.is_file():
            raise _Bad(f"{img_path}: image without annotation (no {xml})")
        try:
            tree = ET.parse(xml).getroot()
        except ET.ParseError as exc:
            raise _Bad(f"{xml}: not valid XML ({exc})") from None
        image = _image(img_path)
        h, w = image.shape[:2]
        boxes, labels = [], []
        for obj in tree.iter("object"):
            name = (obj.findtext("name") or "").strip()
            if name not in index or index[name] == 0:
                raise _Bad(f"{xml}: unknown class {name!r} (labels.txt names {', '.join(names[1:4])}, ...)")
            try:
                b = [float(obj.find("bndbox").findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax")]  # type: ignore[union-attr]
            except (AttributeError, TypeError, ValueError):
                raise _Bad(f"{xml}: object {name!r} has no complete bndbox (xmin, ymin, xmax, ymax)") from None
            boxes.append(_checked_box(xml, (b[0] - 1, b[1] - 1, b[2], b[3]), w, h))
            labels.append(index[name])
        if not boxes:
            raise _Bad(f"{xml}: image without annotation (no object)")
        return image, boxes, labels, i

    return _detection_set(*_collect(ids, read, f"{root.name} {split}"), names)


def _checked_box(where: object, box: tuple[float, ...], w: int, h: int) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    if not (x1 > x0 and y1 > y0):
        raise _Bad(f"{where}: empty box {_fmt(box)}")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise _Bad(f"{where}: box {_fmt(box)} lies outside the {w}x{h} image")
    return box


def _fmt(box: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:g}" for v in box) + ")"


def _detection_set(good: list, bad: list[str], names: tuple[str, ...]) -> DetectionSet:
    shapes = {g[0].shape for g in good}
    if len(shapes) > 1:
        raise DatasetError(f"the images have {len(shapes)} different sizes; the detection reader takes one size")
    images = torch.from_numpy(np.stack([g[0] for g in good])).permute(0, 3, 1, 2).contiguous()
    boxes = [torch.tensor(g[1], dtype=torch.float32).reshape(-1, 4) for g in good]
    labels = [torch.tensor(g[2], dtype=torch.int64) for g in good]
    return DetectionSet(images, boxes, labels, names, tuple(str(g[3]) for g in good), tuple(bad))


def load_coco(annotations: str | Path, images: str | Path | None = None) -> DetectionSet:
    """A COCO detection file (``images``, ``annotations`` with ``bbox`` = x, y, w, h, ``categories``).

    ``images``: the folder of the files (default: ``JPEGImages/`` beside the file's folder, as
    ``cnnzoo data scenes`` writes them, else the file's own folder). Category ids map to labels 1..C in
    ascending order; crowd annotations are left out, as torchvision's reference does.
    """
    path = Path(annotations)
    if not path.is_file():
        raise DatasetError(f"COCO file {path} does not exist")
    try:
        coco = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations",
                                                                                      "categories")):
        raise DatasetError(f"{path}: a COCO file holds lists 'images', 'annotations' and 'categories'")
    folder = Path(images) if images else next((p for p in (path.parent.parent / "JPEGImages", path.parent)
                                               if p.is_dir()), path.parent)
    try:
        cats = sorted(coco["categories"], key=lambda c: c["id"])
        label_of = {c["id"]: k + 1 for k, c in enumerate(cats)}
        names = ("background", *(str(c["name"]) for c in cats))
        by_image: dict[int, list[dict]] = {img["id"]: [] for img in coco["images"]}
    except (KeyError, TypeError):
        raise DatasetError(f"{path}: every category needs an id and a name, every image an id") from None
    orphans = []
    for ann in coco["annotations"]:
        if not isinstance(ann, dict) or ann.get("image_id") not in by_image:
            orphans.append(ann)
        elif not ann.get("iscrowd", 0):
            by_image[ann["image_id"]].append(ann)

    def read(img: dict):
        name = img.get("file_name", "?")
        where = f"{path} image {img['id']} ({name})"
        anns = by_image[img["id"]]
        if not anns:
            raise _Bad(f"{where}: image without annotation")
        image = _image(folder / name)
        h, w = image.shape[:2]
        if (img.get("width"), img.get("height")) not in ((w, h), (None, None)):
            raise _Bad(f"{where}: the file says {img.get('width')}x{img.get('height')} but {folder / name} is {w}x{h}")
        boxes, labels = [], []
        for ann in anns:
            if ann.get("category_id") not in label_of:
                raise _Bad(f"{where}: annotation {ann.get('id')} has unknown category id {ann.get('category_id')!r} "
                           f"(categories: {', '.join(str(c) for c in list(label_of)[:6])}...)")
            try:
                x, y, bw, bh = (float(v) for v in ann["bbox"])
            except (KeyError, TypeError, ValueError):
                raise _Bad(f"{where}: annotation {ann.get('id')} has no bbox [x, y, w, h]") from None
            boxes.append(_checked_box(where, (x, y, x + bw, y + bh), w, h))
            labels.append(label_of[ann["category_id"]])
        return image, boxes, labels, name

    good, bad = _collect(coco["images"], read, path.name)
    if orphans:
        bad = bad + [f"{path}: {len(orphans)} annotation(s) of image ids not in 'images'"]
        warnings.warn(bad[-1] + "; skipped", stacklevel=2)
    return _detection_set(good, bad, names)
