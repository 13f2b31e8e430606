"""GoogLeNet, BN-Inception and Inception-v3: torchvision parity, auxiliary heads, and the papers' tables."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.models.googlenet import PaperAuxPool
from conftest import assert_torchvision_parity


def count(name: str, **kwargs) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in cnnzoo.create_model(name, **kwargs).parameters())


def randomise(model: nn.Module) -> nn.Module:
    torch.manual_seed(1)
    for p in model.parameters():
        nn.init.normal_(p, 0.0, 0.05)
    return model


@pytest.mark.parametrize(("name", "aux", "params"), [
    ("googlenet", True, 13_004_888), ("googlenet", False, 6_624_904),
    ("googlenet_paper", True, 13_378_280), ("googlenet_paper", False, 6_998_552),
    ("inception_v3", True, 27_161_264), ("inception_v3", False, 23_834_568),
])
def test_parameter_counts_with_and_without_aux_heads(name, aux, params):
    assert count(name, aux_logits=aux) == params


def test_torchvision_twins_count_the_same():
    with torch.device("meta"):
        tv = [torchvision.models.googlenet(init_weights=False),
              torchvision.models.googlenet(aux_logits=False, init_weights=False),
              torchvision.models.inception_v3(init_weights=False),
              torchvision.models.inception_v3(aux_logits=False, init_weights=False)]
    ours = [count("googlenet"), count("googlenet", aux_logits=False),
            count("inception_v3"), count("inception_v3", aux_logits=False)]
    assert [sum(p.numel() for p in m.parameters()) for m in tv] == ours


@pytest.mark.parametrize(("tv_kwargs", "ours_kwargs"), [
    ({}, {}),
    ({"aux_logits": False, "transform_input": True}, {"aux_logits": False, "transform_input": True}),
    ({}, {"aux_logits": False}),  # torchvision's files carry aux heads: dropped for a model without them
])
def test_googlenet_loads_torchvision_weights(tv_kwargs, ours_kwargs, tmp_path):
    tv = torchvision.models.googlenet(init_weights=False, **tv_kwargs)
    assert_torchvision_parity("googlenet", tv, tmp_path, **ours_kwargs)


def test_googlenet_file_without_aux_heads_loads_with_a_warning(tmp_path):
    tv = torchvision.models.googlenet(aux_logits=False, init_weights=False)
    with pytest.warns(UserWarning, match="no auxiliary classifiers"):
        assert_torchvision_parity("googlenet", tv, tmp_path)


def test_inception_v3_loads_torchvision_weights(tmp_path):
    assert_torchvision_parity("inception_v3", torchvision.models.inception_v3(init_weights=False), tmp_path)


def test_inception_v3_without_aux_loads_torchvision_weights_at_its_minimum_size(tmp_path):
    tv = torchvision.models.inception_v3(aux_logits=False, init_weights=False)
    assert_torchvision_parity("inception_v3", tv, tmp_path, size=75, aux_logits=False)


def test_googlenet_aux_heads_match_torchvision_in_training():
    tv = randomise(torchvision.models.googlenet(init_weights=False, dropout=0.0, dropout_aux=0.0)).train()
    ours = cnnzoo.create_model("googlenet", dropout=0.0, aux_dropout=0.0).train()
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(2, 3, 224, 224)
    expected, got = tv(x), ours(x)
    assert isinstance(got, cnnzoo.AuxOutputs) and len(got.aux) == 2
    assert (got.logits - expected.logits).abs().max().item() < 1e-4
    assert (got.aux[0] - expected.aux_logits1).abs().max().item() < 1e-4  # shallow (4a) first
    assert (got.aux[1] - expected.aux_logits2).abs().max().item() < 1e-4


def test_inception_v3_aux_head_matches_torchvision_in_training():
    tv = randomise(torchvision.models.inception_v3(init_weights=False, dropout=0.0)).train()
    ours = cnnzoo.create_model("inception_v3", dropout=0.0).train()
    ours.load_state_dict(tv.state_dict())
    x = torch.randn(2, 3, 299, 299)
    expected, got = tv(x), ours(x)
    assert isinstance(got, cnnzoo.AuxOutputs) and len(got.aux) == 1
    assert (got.logits - expected.logits).abs().max().item() < 1e-4
    assert (got.aux[0] - expected.aux_logits).abs().max().item() < 1e-4


@pytest.mark.parametrize(("name", "n_aux"), [("googlenet", 2), ("googlenet_paper", 2), ("inception_v3", 1)])
def test_aux_outputs_in_training_only_and_reset_with_the_head(name, n_aux):
    model = cnnzoo.create_model(name, num_classes=6)
    s = cnnzoo.model_info(name).min_size
    x = torch.randn(2, 3, s, s)
    out = model.train()(x)
    assert isinstance(out, cnnzoo.AuxOutputs)
    assert [a.shape for a in out.aux] == [(2, 6)] * n_aux
    with torch.no_grad():
        assert model.eval()(x).shape == (2, 6)
    model.reset_classifier(4)
    assert [a.shape for a in model.train()(x).aux] == [(2, 4)] * n_aux
    plain = cnnzoo.create_model(name, num_classes=6, aux_logits=False).train()
    assert plain.aux_classifier_names == ()
    assert plain(x).shape == (2, 6)


@pytest.mark.parametrize(("name", "tv_builder"), [
    ("googlenet", torchvision.models.googlenet), ("inception_v3", torchvision.models.inception_v3),
])
def test_minimum_size_is_torchvisions(name, tv_builder):
    tv = tv_builder(aux_logits=False, init_weights=False).eval()
    m = cnnzoo.model_info(name).min_size
    assert m == {"googlenet": 15, "inception_v3": 75}[name]
    with torch.no_grad():
        assert tv(torch.randn(1, 3, m, m)).shape == (1, 1000)
        with pytest.raises(RuntimeError):
            tv(torch.randn(1, 3, m - 1, m - 1))


# Table 1 of the GoogLeNet paper: output depth of each Inception module.
TABLE1_DEPTHS = {"3a": 256, "3b": 480, "4a": 512, "4b": 512, "4c": 512, "4d": 528, "4e": 832, "5a": 832, "5b": 1024}


def module_depths(model: nn.Module) -> dict[str, int]:
    return {k.removeprefix("inception"): m.out_chs for k, m in model.named_children() if k.startswith("inception")}


def test_googlenet_paper_is_the_published_network():
    model = cnnzoo.create_model("googlenet_paper")
    assert module_depths(model) == TABLE1_DEPTHS
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert all(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))
    assert sum(isinstance(m, nn.LocalResponseNorm) for m in model.modules()) == 2
    assert model.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert model.maxpool4.kernel_size == 3
    assert model.dropout.p == 0.4 and model.aux1.dropout.p == 0.7 and model.aux2.dropout.p == 0.7
    assert (model.aux1.fc1.in_features, model.aux1.fc1.out_features) == (2048, 1024)
    with torch.no_grad():
        assert model.eval().forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 1024, 7, 7)


def test_paper_aux_pool_is_the_5x5_stride_3_average_pool_at_224():
    x = torch.randn(2, 512, 14, 14)  # (4a) at 224 px
    assert torch.equal(PaperAuxPool()(x), F.avg_pool2d(x, 5, 3))
    assert PaperAuxPool()(torch.randn(1, 8, 1, 1)).shape == (1, 8, 4, 4)


def test_googlenet_keeps_torchvisions_3x3_quirk():
    model = cnnzoo.create_model("googlenet")
    assert module_depths(model) == TABLE1_DEPTHS
    assert model.inception3a.branch3[1].conv.kernel_size == (3, 3)
    assert model.maxpool4.kernel_size == 2
    assert model.dropout.p == 0.2 and model.transform_input is False


def test_inception_v2_is_figure_5():
    model = cnnzoo.create_model("inception_v2")
    assert module_depths(model) == {"3a": 256, "3b": 320, "3c": 576, "4a": 576, "4b": 576, "4c": 608,
                                    "4d": 608, "4e": 1056, "5a": 1024, "5b": 1024}
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert max(c.kernel_size[0] for c in convs[1:]) == 3  # every 5x5 is two 3x3
    assert (convs[0].kernel_size, convs[0].groups, convs[0].out_channels) == ((7, 7), 3, 24)  # separable, x8
    assert all(isinstance(m.bn, nn.BatchNorm2d) for m in model.modules() if hasattr(m, "bn"))
    assert not any(isinstance(m, nn.LocalResponseNorm) for m in model.modules())
    assert model.dropout.p == 0.0 and model.aux_classifier_names == ()  # the paper removed both
    assert not hasattr(model, "maxpool3") and model.inception3c.branch1 is None
    with torch.no_grad():
        assert model.eval().forward_features(torch.randn(1, 3, 224, 224)).shape == (1, 1024, 7, 7)


def test_inception_v3_grid_sizes_at_299():
    model = cnnzoo.create_model("inception_v3", aux_logits=False).eval()
    sizes: dict[str, tuple[int, ...]] = {}

    def record(key):
        def hook(module, inputs, output):
            sizes[key] = tuple(output.shape[1:])
        return hook

    hooks = [model.get_submodule(f.module).register_forward_hook(record(f.module)) for f in model.feature_info]
    with torch.no_grad():
        model.forward_features(torch.randn(1, 3, 299, 299))
    for h in hooks:
        h.remove()
    assert sizes == {"Conv2d_2b_3x3": (64, 147, 147), "Conv2d_4a_3x3": (192, 71, 71), "Mixed_5d": (288, 35, 35),
                     "Mixed_6e": (768, 17, 17), "Mixed_7c": (2048, 8, 8)}


@pytest.mark.parametrize("size", [28, 32])
def test_googlenet_cifar_takes_small_images(size):
    model = cnnzoo.create_model("googlenet_cifar", in_chans=1 if size == 28 else 3).eval()
    with torch.no_grad():
        feats = model.forward_features(torch.randn(1, model.in_chans, size, size))
        assert feats.shape == (1, 1024, size // 4, size // 4)
        assert model.forward_head(feats).shape == (1, 10)
    assert cnnzoo.model_info("googlenet").small_variant == "googlenet_cifar"
