"""FCN on every family: shapes at every input size, gradients, the paper's pieces, metrics, training end to end."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.dense.fit import DenseConfig, fit_dense, segmentation_task
from cnnzoo.dense.metrics import confusion_matrix, segmentation_metrics
from cnnzoo.dense.segmentation import bilinear_kernel, create_segmenter, fit_to, upsampler
from cnnzoo.errors import ModelArgumentError
from datagen import write_scenes


def family_representatives() -> list[str]:
    """The smallest model (fewest parameters) of each family."""
    best: dict[str, tuple[int, str]] = {}
    for name in cnnzoo.list_models():
        info = cnnzoo.model_info(name)
        size = info.params or 10 ** 12
        if info.family not in best or size < best[info.family][0]:
            best[info.family] = (size, name)
    return sorted(name for _, name in best.values())


FAMILIES = family_representatives()


def test_every_family_is_represented():
    assert len(FAMILIES) == len({cnnzoo.model_info(n).family for n in cnnzoo.list_models()}) == 16


@pytest.mark.parametrize("name", FAMILIES)
def test_segmenter_on_every_family(name):
    size = max(32, cnnzoo.model_info(name).min_size)
    try:
        seg = create_segmenter(name, 4, "fcn8s", in_chans=3)
    except ModelArgumentError:  # LeNet-5 and NiN-CIFAR have two strides: FCN-16s is their finest
        seg = create_segmenter(name, 4, "fcn16s", in_chans=3)
    assert len(seg.strides) == len(seg.skip_scores) + 1
    x = torch.randn(2, 3, size + 1, size + 3)  # odd sides: the crop/pad must still give the input's size
    out = seg(x)
    assert out.shape == (2, 4, size + 1, size + 3)
    out.square().mean().backward()
    first = next(p for p in seg.features.body.parameters())
    assert first.grad is not None and first.grad.abs().sum() > 0
    assert all(p.grad is not None for p in seg.upsample.parameters())
    assert not any(p.grad is None for p in seg.score.parameters())


def test_fcn_heads_strides_and_sizes():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segs = {h: create_segmenter("resnet18", 3, h) for h in ("fcn32s", "fcn16s", "fcn8s")}
    assert [s.strides for s in segs.values()] == [[32], [16, 32], [8, 16, 32]]
    assert [[u.stride[0] for u in s.upsample] for s in segs.values()] == [[32], [2, 16], [2, 2, 8]]
    seg = segs["fcn8s"].eval()
    for h, w in ((64, 64), (65, 77), (97, 96), (40, 33)):
        assert seg(torch.randn(1, 3, h, w)).shape == (1, 3, h, w)
    # the skip scores start at zero, as the paper's new layers: at first FCN-8s only refines FCN-32s's map
    assert all(not c.weight.any() and not c.bias.any() for c in seg.skip_scores)


def test_bilinear_upsampling_is_the_fcn_filter():
    k = bilinear_kernel(2, 4)
    row = torch.tensor([0.25, 0.75, 0.75, 0.25])
    assert torch.equal(k[0, 0], row[:, None] * row[None, :]) and torch.equal(k[0, 1], torch.zeros(4, 4))
    up = upsampler(1, 2)
    x = torch.tensor([[[[0.0, 4.0]]]])
    y = up(x)
    assert y.shape == (1, 1, 2, 4)  # n -> n * factor
    assert torch.allclose(y[0, 0, 0], torch.tensor([0.0, 1.0, 3.0, 3.0]) * 0.75)  # interior: bilinear, x 3/4 at the edge
    assert upsampler(3, 3)(torch.ones(1, 3, 5, 5)).shape == (1, 3, 15, 15)
    assert fit_to(torch.ones(1, 1, 6, 6), (4, 8)).shape == (1, 1, 4, 8)


def test_fully_connected_layers_are_convolutionalised():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        seg = create_segmenter("alexnet_cifar", 5, "fcn32s")
        torch.manual_seed(0)
        fresh = cnnzoo.create_model("alexnet_cifar")
    convs = [m for m in seg.score if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in fresh.classifier if isinstance(m, torch.nn.Linear)]
    assert [c.kernel_size for c in convs] == [(4, 4), (1, 1), (1, 1)]  # fc6 read 256 x 4 x 4 inputs
    assert torch.equal(convs[0].weight.flatten(1), fcs[0].weight) and torch.equal(convs[1].weight.flatten(1),
                                                                                  fcs[1].weight)
    assert convs[-1].out_channels == 5
    assert not any("classifier" in k for k in seg.features.body.state_dict())  # fc6/fc7 live in the head only
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vgg = create_segmenter("vgg16", 21, "fcn8s")
    assert [m.kernel_size for m in vgg.score if isinstance(m, torch.nn.Conv2d)] == [(7, 7), (1, 1), (1, 1)]


def test_too_few_strides_is_one_line():
    with pytest.raises(ModelArgumentError, match="lenet5 has stages at stride\\(s\\) 2, 4 only: fcn8s needs 3 "
                                                 "strides; use fcn16s"):
        create_segmenter("lenet5", 3, "fcn8s")


def test_metrics_exact():
    conf = torch.tensor([[50, 2, 0], [3, 10, 1], [0, 0, 0]])
    m = segmentation_metrics(conf, ("bg", "a", "b"))
    assert m["pixel_accuracy"] == 60 / 66
    iou_bg, iou_a, iou_b = 50 / (52 + 53 - 50), 10 / (14 + 12 - 10), 0 / (0 + 1 - 0)
    assert m["per_class_iou"] == {"bg": iou_bg, "a": iou_a, "b": iou_b}
    assert m["mean_iou"] == pytest.approx((iou_bg + iou_a + iou_b) / 3, abs=1e-15)
    empty = segmentation_metrics(torch.tensor([[5, 0], [0, 0]]))
    assert empty["per_class_iou"] == {"0": 1.0, "1": None} and empty["mean_iou"] == 1.0
    pred = torch.tensor([[0, 1], [2, 2]])
    target = torch.tensor([[0, 255], [2, 1]])
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 1]]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), 32, max_items=2, min_scale=0.7, max_scale=1.0)


@pytest.mark.parametrize("backbone", ["squeezenet1_1", "alexnet_cifar"])
def test_one_training_step(scenes, tmp_path, backbone):
    cfg = DenseConfig(backbone=backbone, data=str(scenes), epochs=1, batch_size=6, out=str(tmp_path / "r"),
                      device="cpu", head="fcn16s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = fit_dense(cfg, segmentation_task, log=lambda *a: None)
    assert report["train_images"] == 6 and report["held_out_images"] == 3
    assert 0 <= report["mean_iou"] <= 1 and len(report["per_class_iou"]) == 11


def test_train_resume_predict_export_cli(scenes, tmp_path, capsys):
    out = tmp_path / "run"
    common = ["segment", "train", "resnet20_cifar", "--data", str(scenes), "--out", str(out), "--batch-size", "3",
              "--head", "fcn8s", "--input-scale", "1.5"]
    assert main([*common, "--epochs", "1"]) == 0
    assert main([*common, "--epochs", "2", "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["epochs"] == 2
    assert (out / "metrics.csv").read_text().count("\n") == 3  # header and two epochs, none repeated
    assert main([*common, "--epochs", "1"]) == 2
    assert "holds a finished run" in capsys.readouterr().err
    assert main(["segment", "predict", str(out), str(scenes / "JPEGImages/val_000000.jpg"), "--out",
                 str(tmp_path / "pred")]) == 0
    assert (tmp_path / "pred/val_000000.overlay.png").is_file() and (tmp_path / "pred/val_000000.mask.png").is_file()
    assert main(["segment", "evaluate", str(out), "--data", str(scenes)]) == 0
    assert "mean IoU" in capsys.readouterr().out
    assert main(["segment", "export", str(out), "--out", str(tmp_path / "seg.onnx")]) == 0
    printed = capsys.readouterr().out
    assert "output N x 11 x 32 x 32" in printed and "verified: ONNX Runtime" in printed


def test_input_scale_keeps_the_output_size_and_rebuilds():
    from cnnzoo.dense.segmentation import segmenter_from_config

    torch.manual_seed(0)
    seg = create_segmenter("resnet20_cifar", 3, "fcn8s", input_scale=2.0).eval()
    x = torch.randn(2, 3, 17, 20)
    assert seg(x).shape == (2, 3, 17, 20)
    again = segmenter_from_config(seg.config)
    again.load_state_dict(seg.state_dict())
    assert again.input_scale == 2.0 and torch.equal(again.eval()(x), seg(x))
    # enlarged twice, the stride-4 stage of an 8 x 8 image has 4 x 4 cells, not 2 x 2
    sizes = []
    hook = seg.features.body.get_submodule(seg.features.stages[-1]).register_forward_hook(
        lambda _m, _i, out: sizes.append(tuple(out.shape[-2:])))
    seg(torch.randn(1, 3, 8, 8))
    hook.remove()
    assert sizes == [(4, 4)]
    with pytest.raises(ModelArgumentError, match="input_scale must be in"):
        create_segmenter("resnet20_cifar", 3, "fcn8s", input_scale=0)


def test_overlay_legend_names_each_class_beside_its_colour():
    import numpy as np

    from cnnzoo.dense.visual import MIN_SIDE, overlay_picture, palette_rgb

    image = np.zeros((32, 32, 3), np.uint8)
    mask = np.zeros((32, 32), np.uint8)
    mask[4:12, 4:12], mask[20:30, 20:30] = 1, 3
    classes = ["background", "shirt", "bag", "boot"]
    pic = np.asarray(overlay_picture(image, mask, classes))
    assert pic.shape[0] == MIN_SIDE and pic.shape[1] > MIN_SIDE  # enlarged 8x, the legend to the right
    legend = pic[:, MIN_SIDE:]
    colours = palette_rgb()
    for k in (1, 2, 3):  # few classes: all of them, each swatch in its class's colour, in order
        rows = np.where((legend == colours[k]).all(-1).any(1))[0]
        assert len(rows) > 5, classes[k]
    firsts = [np.where((legend == colours[k]).all(-1).any(1))[0][0] for k in (1, 2, 3)]
    assert firsts == sorted(firsts)
    many = [f"c{i}" for i in range(20)]  # many classes: only those present
    legend = np.asarray(overlay_picture(image, mask, many))[:, MIN_SIDE:]
    assert [bool((legend == colours[k]).all(-1).any()) for k in (1, 2, 3)] == [True, False, True]
    bare = np.asarray(overlay_picture(image, np.zeros_like(mask), many))
    assert bare.shape[1] > MIN_SIDE  # "background only"


def test_train_config_file_flags_win_and_bad_settings_are_one_line(scenes, tmp_path, capsys):
    cfg = tmp_path / "seg.toml"
    cfg.write_text(f'data = "{scenes}"\nepochs = 1\nbatch_size = 3\nhead = "fcn16s"\nlr = 0.002\n')
    out = tmp_path / "run"
    assert main(["segment", "train", "resnet20_cifar", "--config", str(cfg), "--head", "fcn8s", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert (saved["head"], saved["batch_size"], saved["lr"], saved["epochs"]) == ("fcn8s", 3, 0.002, 1)
    assert saved["warmup_epochs"] == 0.125  # an eighth of a one-epoch run, not all of it
    again = tmp_path / "again"  # a run's config.json is a config file too
    assert main(["segment", "train", "resnet20_cifar", "--config", str(out / "config.json"), "--out", str(again)]) == 0
    assert json.loads((again / "config.json").read_text())["head"] == "fcn8s"
    capsys.readouterr()
    bad = {"bogus = 1": "unknown setting(s) bogus in config file {f}; see `cnnzoo segment train --help`",
           'epochs = "many"': "epochs in config file {f} must be a whole number, got 'many'",
           "lr = -1": "lr in config file {f} must be positive, got -1.0",
           'head = "fcn4s"': "head in config file {f} must be one of fcn32s, fcn16s, fcn8s, got 'fcn4s'",
           'task = "detection"': "{f} holds detection settings; use it with `cnnzoo detect train`"}
    for k, (line, message) in enumerate(bad.items()):
        f = tmp_path / f"bad{k}.toml"
        f.write_text(f'data = "{scenes}"\n{line}\n')
        assert main(["segment", "train", "resnet20_cifar", "--config", str(f), "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert message.format(f=f) in err and "Traceback" not in err and err.count("\n") == 1, err
    assert main(["segment", "train", "resnet20_cifar", "--config", str(cfg), "--lr", "-1"]) == 2
    assert "--lr must be positive, got -1.0" in capsys.readouterr().err  # a flag is named as a flag
    assert main(["segment", "train", "resnet20_cifar", "--data", str(scenes), "--epochs", "2", "--warmup-epochs",
                 "2"]) == 2
    assert "--warmup-epochs must be 0 or more and under --epochs (2: the rate would only rise), got 2.0" in \
        capsys.readouterr().err
    assert main(["segment", "train", "resnet20_cifar", "--epochs", "1"]) == 2
    assert "give the data: --data" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
