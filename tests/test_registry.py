"""The registry and the model contract, checked for every registered model."""

from __future__ import annotations

import pytest
import torch

import cnnzoo
from cnnzoo.registry import ModelInfo, register_model
from conftest import logits_of, small_size

ALL = cnnzoo.list_models()


def test_zoo_is_populated():
    assert len(ALL) >= 17
    assert cnnzoo.list_models("vgg16*") == ["vgg16", "vgg16_bn", "vgg16_bn_cifar", "vgg16_cifar"]


@pytest.mark.parametrize("name", ALL)
def test_parameter_count_matches_reference(name):
    info = cnnzoo.model_info(name)
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    count = sum(p.numel() for p in model.parameters())
    assert info.params is not None, "every model records its exact parameter count"
    assert count == info.params
    if info.params_approx:
        assert abs(count - info.params_approx) / info.params_approx < 0.01


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("name", ALL)
def test_output_shape(name, in_chans):
    model = cnnzoo.create_model(name, num_classes=7, in_chans=in_chans).eval()
    s = small_size(name)
    with torch.no_grad():
        out = model(torch.randn(2, in_chans, s, s))
    assert out.shape == (2, 7)


@pytest.mark.parametrize("name", ALL)
def test_every_parameter_gets_a_gradient(name):
    model = cnnzoo.create_model(name, num_classes=5).train()
    s = small_size(name)
    out = model(torch.randn(2, model.in_chans, s, s))
    loss = logits_of(out).square().mean()
    if isinstance(out, cnnzoo.AuxOutputs):
        loss = loss + sum(a.square().mean() for a in out.aux)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


@pytest.mark.parametrize("name", ALL)
def test_reset_classifier_to_features(name):
    model = cnnzoo.create_model(name)
    model.reset_classifier(0)
    model.eval()
    s = small_size(name)
    with torch.no_grad():
        feats = model(torch.randn(2, model.in_chans, s, s))
    assert feats.shape == (2, model.num_features)
    model.reset_classifier(4)
    assert model.num_classes == 4
    with torch.no_grad():
        assert model(torch.randn(2, model.in_chans, s, s)).shape == (2, 4)


@pytest.mark.parametrize("name", ALL)
def test_feature_info_matches_feature_maps(name):
    """Channels are exact, and each stage's total stride is exact: growing the input by 2R pixels
    (R the deepest stride) grows a stage's map by exactly 2R / reduction."""
    model = cnnzoo.create_model(name).eval()
    assert model.feature_info, "every model describes its stages"
    reductions = [f.reduction for f in model.feature_info]
    assert reductions == sorted(reductions)
    grow = 2 * reductions[-1]

    def stage_shapes(size: int) -> dict[str, torch.Size]:
        shapes: dict[str, torch.Size] = {}

        def record(key):
            def hook(module, inputs, output):
                shapes.setdefault(key, output.shape)
            return hook

        hooks = [model.get_submodule(f.module).register_forward_hook(record(f.module)) for f in model.feature_info]
        with torch.no_grad():
            model.forward_features(torch.randn(1, model.in_chans, size, size))
        for h in hooks:
            h.remove()
        return shapes

    # The smallest size that is a multiple of the deepest stride and at least the minimum: strides are
    # exact at any valid size, and small inputs keep this test fast for the largest models.
    info = cnnzoo.model_info(name)
    s = -(-max(info.min_size, reductions[-1]) // reductions[-1]) * reductions[-1]
    small, large = stage_shapes(s), stage_shapes(s + grow)
    for f in model.feature_info:
        assert small[f.module][1] == f.num_chs, f.module
        assert large[f.module][2] - small[f.module][2] == grow // f.reduction, f.module


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trip_is_exact(name, tmp_path):
    model = cnnzoo.create_model(name, num_classes=3).eval()
    path = tmp_path / "m.safetensors"
    model.save(path)
    again = cnnzoo.load(path).eval()
    assert type(again) is type(model) and again.num_classes == 3
    a, b = model.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    s = small_size(name)
    x = torch.randn(2, model.in_chans, s, s)
    with torch.no_grad():
        assert torch.equal(model(x), again(x))


@pytest.mark.parametrize("name", [n for n in ALL if cnnzoo.model_info(n).min_size > 1])
def test_too_small_input_is_refused_before_any_work(name):
    info = cnnzoo.model_info(name)
    model = cnnzoo.create_model(name).eval()
    m = info.min_size
    x = torch.randn(1, model.in_chans, m - 1, m - 1)
    with pytest.raises(cnnzoo.InputSizeError, match=f"at least {m}x{m}") as err:
        model(x)
    if info.small_variant:
        assert info.small_variant in str(err.value)
        assert info.small_variant in ALL
    # The declared minimum is the real one: one pixel less breaks the network itself.
    with pytest.raises(RuntimeError), torch.no_grad():
        model.forward_head(model.forward_features(x))


def test_unknown_name_suggests_close_matches():
    with pytest.raises(cnnzoo.UnknownModelError, match="did you mean.*vgg16"):
        cnnzoo.create_model("vgg61")


def test_registering_a_name_twice_raises():
    info = cnnzoo.model_info("lenet5")
    with pytest.raises(ValueError, match="registered twice"):
        register_model(ModelInfo(**{**info.__dict__}))(lambda **kw: None)


def test_wrong_channel_count_names_the_fix():
    model = cnnzoo.create_model("lenet5")
    with pytest.raises(cnnzoo.InputSizeError, match="in_chans=3"):
        model(torch.randn(1, 3, 32, 32))
