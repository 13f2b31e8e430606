"""fashion-scenes and the dense readers: VOC masks, VOC XML and COCO JSON agree; every bad record is named."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnzoo.cli import main
from cnnzoo.datasets.dense import DatasetError, load_coco, load_voc_detection, load_voc_segmentation
from cnnzoo.datasets.scenes import SceneSpec, generate
from datagen import write_idx_dataset


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("fashion"), n_train=60, n_test=30)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, items) -> Path:
    out = tmp_path_factory.mktemp("scenes") / "s"
    generate(out, 8, 4, SceneSpec(size=48, max_items=3, min_scale=0.8, max_scale=1.2, seed=3), items,
             log=lambda *a: None)
    return out


def copy(scenes: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(scenes, tmp_path / "copy"))


def test_layout_and_determinism(scenes, items, tmp_path):
    assert sorted(p.name for p in scenes.iterdir()) == ["Annotations", "ImageSets", "JPEGImages", "README.txt",
                                                        "SegmentationClass", "annotations", "labels.txt"]
    assert len(list((scenes / "JPEGImages").iterdir())) == 12
    assert (scenes / "ImageSets/Segmentation/val.txt").read_text().split() == [f"val_{i:06d}" for i in range(4)]
    again = tmp_path / "again"
    generate(again, 10, 4, SceneSpec(size=48, max_items=3, min_scale=0.8, max_scale=1.2, seed=3), items,
             log=lambda *a: None)
    for name in ("SegmentationClass/train_000007.png", "JPEGImages/val_000003.jpg", "Annotations/train_000005.xml"):
        assert (again / name).read_bytes() == (scenes / name).read_bytes()  # more scenes keep the first ones
    coco = json.loads((scenes / "annotations/instances_val.json").read_text())
    assert coco == json.loads((again / "annotations/instances_val.json").read_text())
    assert [c["id"] for c in coco["categories"]] == list(range(1, 11))


def test_readers_agree(scenes):
    seg = load_voc_segmentation(scenes, "train")
    assert seg.images.shape == (8, 3, 48, 48) and seg.masks.shape == (8, 48, 48) and seg.num_classes == 11
    png = np.asarray(Image.open(scenes / "SegmentationClass/train_000002.png"))
    assert np.array_equal(seg.masks[2].numpy(), png)
    assert set(seg.masks.unique().tolist()) <= {*range(11), 255}
    voc, coco = load_voc_detection(scenes, "val"), load_coco(scenes / "annotations/instances_val.json")
    assert voc.classes == coco.classes == seg.classes
    assert torch.equal(voc.images, coco.images)
    for vb, cb, vl, cl in zip(voc.boxes, coco.boxes, voc.labels, coco.labels):
        assert torch.equal(vb, cb) and torch.equal(vl, cl)
    masks = load_voc_segmentation(scenes, "val").masks
    for mask, boxes, labels in zip(masks, voc.boxes, voc.labels):
        for (x0, y0, x1, y1), label in zip(boxes.int().tolist(), labels.tolist()):
            assert 0 <= x0 < x1 <= 48 and 0 <= y0 < y1 <= 48
            assert (mask[y0:y1, x0:x1] == label).any()  # the item's pixels lie inside its box


def test_mask_of_another_size(scenes, tmp_path):
    root = copy(scenes, tmp_path)
    mask = Image.open(root / "SegmentationClass/train_000001.png")
    mask.resize((40, 48)).save(root / "SegmentationClass/train_000001.png")
    with pytest.raises(DatasetError, match=r"train_000001.png: mask is 40x48 but its image train_000001.jpg is 48x48"):
        load_voc_segmentation(root, "train")


def test_label_outside_the_classes(scenes, tmp_path):
    root = copy(scenes, tmp_path)
    mask = Image.open(root / "SegmentationClass/train_000004.png")
    values = np.asarray(mask).copy()
    values[0, 0] = 17
    bad = Image.fromarray(values, mode="P")
    bad.putpalette(mask.getpalette())
    bad.save(root / "SegmentationClass/train_000004.png")
    with pytest.raises(DatasetError, match=r"train_000004.png: label value\(s\) 17 outside the 11 classes 0..10"):
        load_voc_segmentation(root, "train")


def test_image_without_annotation(scenes, tmp_path):
    root = copy(scenes, tmp_path)
    (root / "SegmentationClass/train_000003.png").unlink()
    (root / "Annotations/val_000001.xml").unlink()
    with pytest.raises(DatasetError, match=r"train_000003.jpg: image without annotation"):
        load_voc_segmentation(root, "train")
    with pytest.raises(DatasetError, match=r"val_000001.jpg: image without annotation"):
        load_voc_detection(root, "val")


def test_coco_box_outside_and_unknown_category(scenes, tmp_path):
    root = copy(scenes, tmp_path)
    path = root / "annotations/instances_val.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["bbox"] = [40, 40, 20, 5]
    path.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match=r"image 1 \(val_000000.jpg\): box \(40, 40, 60, 45\) lies outside the "
                                           r"48x48 image"):
        load_coco(path)
    coco["annotations"][0]["bbox"] = [1, 1, 5, 5]
    coco["annotations"][0]["category_id"] = 99
    path.write_text(json.dumps(coco))
    with pytest.raises(DatasetError, match=r"annotation 1 has unknown category id 99"):
        load_coco(path)


def test_a_few_bad_records_in_a_large_set_are_skipped_and_counted(scenes, tmp_path):
    root = copy(scenes, tmp_path)
    coco = json.loads((root / "annotations/instances_train.json").read_text())
    images, annotations = [], []
    for k in range(60):  # 60 records pointing at the 8 files; one of them without annotation
        src = coco["images"][k % 8]
        images.append({**src, "id": k + 1})
        if k != 5:
            annotations += [{**a, "id": len(annotations) + 1, "image_id": k + 1}
                            for a in coco["annotations"] if a["image_id"] == src["id"]]
    path = root / "annotations/big.json"
    path.write_text(json.dumps({**coco, "images": images, "annotations": annotations}))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_coco(path)
    assert len(data.images) == 59 and len(data.skipped) == 1
    assert any("skipped 1 bad big.json record(s) of 60: " in str(w.message) and "image 6" in str(w.message)
               for w in caught)


def test_cli_one_line_errors(scenes, tmp_path, capsys):
    root = copy(scenes, tmp_path)
    Image.open(root / "SegmentationClass/train_000001.png").resize((40, 48)).save(
        root / "SegmentationClass/train_000001.png")
    assert main(["segment", "train", "resnet20_cifar", "--data", str(root), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("cnnzoo: error: ") and "train_000001.png: mask is 40x48" in err
    assert main(["data", "scenes", "--out", str(tmp_path / "x"), "--size", "48", "--max-scale", "2"]) == 2
    assert "--max-scale must be at most 1.71" in capsys.readouterr().err
