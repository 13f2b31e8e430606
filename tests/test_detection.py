"""Detection on any backbone: a feature pyramid on every family, torchvision's detectors, exact mAP, the CLI."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.dense.detection import DETECTORS, FPNBackbone, create_detector
from cnnzoo.dense.fit import detection_metrics
from datagen import write_scenes
from test_segmentation import FAMILIES


@pytest.mark.parametrize("name", FAMILIES)
def test_feature_pyramid_on_every_family(name):
    size = max(32, cnnzoo.model_info(name).min_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cnnzoo.create_model(name, in_chans=3)
    model.reset_classifier(0)
    fpn = FPNBackbone(model, out_channels=16)
    maps = fpn(torch.randn(2, 3, size, size))
    assert list(maps) == [str(i) for i in range(len(fpn.strides) - 1)] + ["pool"]
    assert all(m.shape[:2] == (2, 16) for m in maps.values())
    assert fpn.strides == sorted(fpn.strides) and len(fpn.strides) <= 5
    sum(m.square().mean() for m in maps.values()).backward()
    assert next(model.parameters()).grad is not None


def test_resnet18_pyramid_levels_and_anchors():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = create_detector("resnet18", 11, "fasterrcnn", image_size=96)
    assert det.backbone.strides == [4, 8, 16, 32, 64]
    assert det.backbone.body.stages == ["layer1", "layer2", "layer3", "layer4"]
    assert det.rpn.anchor_generator.sizes == ((16,), (32,), (64,), (128,), (256,))
    assert (det.transform.min_size, det.transform.max_size) == ((96,), 96)


@pytest.mark.parametrize("kind", DETECTORS)
def test_each_detector_trains_and_predicts(kind):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = create_detector("mobilenet_v1_050", 3, kind, image_size=64)
    images = [torch.rand(3, 64, 64) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[4.0, 6.0, 30.0, 40.0]]), "labels": torch.tensor([1])},
               {"boxes": torch.tensor([[10.0, 10.0, 50.0, 60.0], [0.0, 0.0, 12.0, 12.0]]),
                "labels": torch.tensor([2, 1])}]
    losses = det(images, targets)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    det.eval()
    with torch.no_grad():
        out = det(images)
    assert len(out) == 2 and set(out[0]) == {"boxes", "labels", "scores"}


def test_map_exact():
    truth = [torch.tensor([[0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 40.0, 40.0]])]
    labels = [torch.tensor([1, 2])]
    perfect = [{"boxes": truth[0], "labels": labels[0], "scores": torch.tensor([0.9, 0.8])}]
    assert detection_metrics(perfect, truth, labels) == {"map": 1.0, "map_50": 1.0, "map_75": 1.0}
    wrong = [{"boxes": truth[0], "labels": torch.tensor([2, 1]), "scores": torch.tensor([0.9, 0.8])}]
    assert detection_metrics(wrong, truth, labels) == {"map": 0.0, "map_50": 0.0, "map_75": 0.0}
    # class 1 found at IoU 80/120 = 2/3 (a hit at 0.5, 0.55, 0.6, 0.65: 4 of 10 thresholds), class 2 missed
    shifted = [{"boxes": torch.tensor([[2.0, 0.0, 12.0, 10.0]]), "labels": torch.tensor([1]),
                "scores": torch.tensor([0.9])}]
    m = detection_metrics(shifted, truth, labels)
    assert m["map_50"] == 0.5 and m["map_75"] == 0.0 and m["map"] == pytest.approx((0.4 + 0.0) / 2)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), 48, max_items=2, min_scale=0.8, max_scale=1.2)


def test_train_evaluate_predict_cli(scenes, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["detect", "train", "mobilenet_v1_050", "--data", str(scenes / "annotations/instances_train.json"),
                 "--out", str(out), "--epochs", "1", "--batch-size", "3"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["train_images"] == 6 and report["held_out_images"] == 3 and 0 <= report["map_50"] <= 1
    assert main(["detect", "evaluate", str(out), "--data", str(scenes)]) == 0
    assert "mAP@0.5" in capsys.readouterr().out
    assert main(["detect", "predict", str(out), str(scenes / "JPEGImages/val_000000.jpg"), "--out",
                 str(tmp_path / "pred"), "--min-score", "0"]) == 0
    assert (tmp_path / "pred/val_000000.boxes.png").is_file()
    capsys.readouterr()
    assert main(["detect", "export", str(out), "--out", str(tmp_path / "det.onnx"), "--check-image",
                 str(scenes / "JPEGImages/val_000000.jpg")]) == 0
    printed = capsys.readouterr().out
    assert "input 1 x 3 x 48 x 48" in printed and "verified: ONNX Runtime vs eager PyTorch on 3 images" in printed
    assert (tmp_path / "det.onnx").is_file()
    assert main(["detect", "export", str(tmp_path / "nothing"), "--out", str(tmp_path / "no.onnx")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err and not (tmp_path / "no.onnx").exists()
    config = tmp_path / "det.json"  # --config: JSON here, flags win
    config.write_text(json.dumps({"data": str(scenes), "epochs": 1, "batch_size": 2, "head": "fcos"}))
    assert main(["detect", "train", "mobilenet_v1_050", "--config", str(config), "--batch-size", "3", "--out",
                 str(tmp_path / "r3")]) == 0
    saved = json.loads((tmp_path / "r3/config.json").read_text())
    assert (saved["head"], saved["batch_size"], saved["task"]) == ("fcos", 3, "detection")
    config.write_text(json.dumps({"data": str(scenes), "input_scale": 2}))
    assert main(["detect", "train", "mobilenet_v1_050", "--config", str(config)]) == 2
    assert f"input_scale in config file {config} must be in (0, 8] (and 1 for detection), got 2.0" in \
        capsys.readouterr().err
    assert main(["detect", "train", "mobilenet_v1_050", "--data", str(scenes / "labels.txt"),
                 "--out", str(tmp_path / "r2")]) == 2
    assert "give a VOC-layout folder or a COCO .json file" in capsys.readouterr().err


def test_map_without_its_libraries_names_the_extra(monkeypatch):
    import sys

    from cnnzoo.dense.fit import map_metric
    from cnnzoo.errors import CnnzooError

    for name in ("torchmetrics", "torchmetrics.detection", "faster_coco_eval"):  # imported already or not
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(CnnzooError, match=r"pip install 'cnnzoo\[dense\]'"):
        map_metric()


@pytest.mark.parametrize("kind", DETECTORS)
def test_detector_onnx_export_matches_pytorch(kind):
    """Each head exports (fixed image size, a varying number of detections) and ONNX Runtime finds the same
    boxes, labels and scores as PyTorch: with the score threshold at 0 a random detector gives many."""
    from cnnzoo.dense.export import detector_onnx, verify_detector

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        det = create_detector("mobilenet_v1_050", 4, kind, image_size=64).eval()
    with torch.no_grad():  # an untrained head gives all anchors the same score: spread them, as training would
        for p in det.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    if kind == "fasterrcnn":
        det.roi_heads.score_thresh = 0.0
    else:
        det.score_thresh = 0.0
    data = detector_onnx(det, (64, 64))
    g = torch.Generator().manual_seed(1)
    check = verify_detector(det, data, [torch.rand(3, 64, 64, generator=g) for _ in range(2)])
    assert check["images"] == 2 and check["detections"] > 10 and check["max_diff"] < 1e-3


def test_matching_allows_a_few_swaps_among_tied_scores_only():
    from cnnzoo.dense.export import ExportError, match_detections

    boxes = torch.tensor([[0.0, 0, 10, 10]] * 40) + torch.arange(40.0)[:, None]
    want = {"boxes": boxes, "labels": torch.ones(40, dtype=torch.long), "scores": torch.full((40,), 0.09)}
    got = {k: v.clone() for k, v in want.items()}
    got["boxes"][5] += 3  # NMS kept another of the tied boxes: one swap among 40 tied scores is allowed
    assert match_detections(want, got, "in x", "det.onnx") == (0.0, 1)
    got["boxes"][6:8] += 3  # three swaps are more than 5 % of 40
    with pytest.raises(ExportError, match=r"det.onnx has no counterpart .* label 1, score 0.090 in x"):
        match_detections(want, got, "in x", "det.onnx")
    want["scores"] = got["scores"] = torch.linspace(0.9, 0.1, 40)  # no tie: no swap is allowed
    got["boxes"] = want["boxes"].clone()
    got["boxes"][5] += 3
    with pytest.raises(ExportError, match="no counterpart"):
        match_detections(want, got, "in x", "det.onnx")


def test_boxes_are_drawn_enlarged_with_a_tag_in_their_class_colour():
    import numpy as np

    from cnnzoo.dense.visual import FONT_SIZE, draw_boxes, palette_rgb

    pic = np.asarray(draw_boxes(np.zeros((48, 48, 3), np.uint8), [[10.0, 20.0, 30.0, 40.0]], [2], [0.91],
                                ["background", "shirt", "bag"]))
    assert pic.shape == (288, 288, 3)  # 48 px enlarged 6x, so 12-px text fits
    colour = palette_rgb()[2]
    assert (pic[120:240, 60] == colour).all() and (pic[120:240, 180] == colour).all()  # the box's sides, x 6
    tag = pic[120 - FONT_SIZE - 3:120, 60:120]  # above the box: filled with the colour, with the text on it
    filled = (tag == colour).all(-1).mean()
    assert 0.5 < filled < 1
