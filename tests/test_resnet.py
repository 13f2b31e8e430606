"""ResNet family: torchvision parity, exact sizes, v1/v1.5 strides, zero-init, stochastic depth, option A."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo.models.resnet import BasicBlock, Bottleneck, ResNet, ZeroPadShortcut
from conftest import assert_torchvision_parity

FAMILY = [n for n in cnnzoo.list_models() if cnnzoo.model_info(n).family == "resnet"]


def blocks(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def meta_model(name: str, **kwargs) -> torch.nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kwargs)


@pytest.mark.parametrize("name, size", [
    ("resnet18", 64), ("resnet34", 64), ("resnet50", 64), ("resnet101", 64),
    pytest.param("resnet152", 64, marks=pytest.mark.slow),
    ("wide_resnet50_2", 64), ("resnext50_32x4d", 64),
    pytest.param("wide_resnet101_2", 32, marks=pytest.mark.slow),
    pytest.param("resnext101_32x8d", 32, marks=pytest.mark.slow),
])
def test_torchvision_weights_load_with_equal_outputs(name, size, tmp_path):
    assert cnnzoo.model_info(name).torchvision == name
    assert_torchvision_parity(name, getattr(torchvision.models, name)(), tmp_path, size=size)


# Exact counts measured independently of ModelInfo (torchvision's metadata for the ImageNet models).
EXACT = {
    "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032, "resnet101": 44_549_160,
    "resnet152": 60_192_808, "wide_resnet50_2": 68_883_240, "wide_resnet101_2": 126_886_696,
    "resnext50_32x4d": 25_028_904, "resnext101_32x8d": 88_791_336, "resnet18_cifar": 11_173_962,
    "resnet20_cifar": 269_722, "resnet32_cifar": 464_154, "resnet44_cifar": 658_586, "resnet56_cifar": 853_018,
    "resnet110_cifar": 1_727_962, "resnet110_sd_cifar": 1_727_962,
    "resnext29_8x64d": 34_426_698, "resnext29_16x64d": 68_155_210,
}


def test_every_family_model_has_an_exact_count():
    assert sorted(EXACT) == FAMILY


@pytest.mark.parametrize("name", sorted(EXACT))
def test_exact_parameter_count(name):
    assert count(meta_model(name)) == EXACT[name] == cnnzoo.model_info(name).params


@pytest.mark.parametrize("name, paper", [
    ("resnet20_cifar", 0.27e6), ("resnet32_cifar", 0.46e6), ("resnet44_cifar", 0.66e6), ("resnet56_cifar", 0.85e6),
    ("resnext29_8x64d", 34.4e6), ("resnext29_16x64d", 68.1e6),
])
def test_paper_figures_are_within_one_percent(name, paper):
    assert abs(EXACT[name] - paper) / paper < 0.01
    assert cnnzoo.model_info(name).params_approx == paper


def test_resnet110_paper_figure_is_too_rounded_to_record():
    """The paper's "1.7M" is 1.6% off the exact 1,727,962, so no params_approx is recorded."""
    assert abs(EXACT["resnet110_cifar"] - 1.7e6) / 1.7e6 > 0.01
    assert cnnzoo.model_info("resnet110_cifar").params_approx is None


def test_imagenet_metadata_matches_the_reference():
    info = cnnzoo.model_info("resnet50")
    assert (info.gmacs, info.top1, info.min_size, info.input_size) == (4.089, 76.13, 1, (3, 224, 224))
    assert (info.preprocessing.resize, info.preprocessing.crop) == (256, 224)
    assert info.arxiv == "1512.03385" and info.year == 2015 and "ILSVRC 2015" in info.ilsvrc
    assert cnnzoo.model_info("resnext101_32x8d").arxiv == "1611.05431"
    assert cnnzoo.model_info("wide_resnet50_2").arxiv == "1605.07146"
    assert cnnzoo.model_info("resnet110_sd_cifar").arxiv == "1603.09382"


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20_cifar", "resnext29_8x64d"])
def test_minimum_size_one_is_exact(name):
    """min_size is 1: every strided layer pads, so a 1x1 image passes (odd sizes too)."""
    model = cnnzoo.create_model(name).eval()
    with torch.no_grad():
        for s in (1, 7):
            assert model(torch.randn(1, 3, s, s)).shape == (1, model.num_classes)


def test_v1_puts_the_stride_on_the_first_1x1_and_v15_on_the_3x3():
    v15 = cnnzoo.create_model("resnet50").eval()
    v1 = cnnzoo.create_model("resnet50", stride_in_1x1=True).eval()
    assert count(v1) == count(v15)
    for stage in ("layer2", "layer3", "layer4"):
        a, b = v15.get_submodule(stage)[0], v1.get_submodule(stage)[0]
        assert (a.conv1.stride, a.conv2.stride) == ((1, 1), (2, 2))
        assert (b.conv1.stride, b.conv2.stride) == ((2, 2), (1, 1))
        assert a.downsample[0].stride == b.downsample[0].stride == (2, 2)
    v1.load_state_dict(v15.state_dict())
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        f15, f1 = v15.forward_features(x), v1.forward_features(x)
    assert f15.shape == f1.shape == (2, 2048, 2, 2)
    assert not torch.allclose(f15, f1)


@pytest.mark.parametrize("name", ["resnet18", "resnet50", "resnet20_cifar"])
def test_zero_init_residual_zeroes_each_blocks_last_bn(name):
    plain = cnnzoo.create_model(name)
    zeroed = cnnzoo.create_model(name, zero_init_residual=True)
    for p, z in zip(blocks(plain), blocks(zeroed)):
        last = "bn3" if isinstance(z, Bottleneck) else "bn2"
        assert torch.count_nonzero(getattr(z, last).weight) == 0
        assert torch.equal(getattr(p, last).weight, torch.ones_like(getattr(p, last).weight))
        assert torch.equal(z.bn1.weight, torch.ones_like(z.bn1.weight))
    assert len(blocks(zeroed)) == {"resnet18": 8, "resnet50": 16, "resnet20_cifar": 9}[name]


@pytest.mark.parametrize("name", FAMILY)
def test_every_model_takes_drop_path_rate(name):
    model = meta_model(name, drop_path_rate=0.2)
    rates = [b.drop_path.p for b in blocks(model)]
    assert rates == pytest.approx([0.2 * (i + 1) / len(rates) for i in range(len(rates))])


def test_resnet110_sd_drop_probabilities_are_linear_up_to_one_half():
    model = meta_model("resnet110_sd_cifar")
    rates = [b.drop_path.p for b in blocks(model)]
    assert len(rates) == 54
    assert rates == pytest.approx([0.5 * l / 54 for l in range(1, 55)])
    assert rates[-1] == 0.5
    assert all(b.drop_path.p == 0.0 for b in blocks(meta_model("resnet110_cifar")))


def test_drop_path_is_identity_in_eval():
    sd = cnnzoo.create_model("resnet110_sd_cifar").eval()
    plain = cnnzoo.create_model("resnet110_cifar").eval()
    plain.load_state_dict(sd.state_dict())
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(sd(x), plain(x))
        assert torch.equal(sd(x), sd(x))


def test_drop_path_drops_whole_samples_at_the_linear_decay_rate():
    """Per block, the number of samples whose branch is dropped is Binomial(n, p_l): check within 4 sigma."""
    model = cnnzoo.create_model("resnet110_sd_cifar").train()
    bs = blocks(model)
    watched = {0: bs[0], 26: bs[26], 53: bs[53]}
    dropped: dict[int, int] = {}

    def record(index):
        def hook(module, inputs, output):
            branch = inputs[0].flatten(1)
            out = output.flatten(1)
            gone = (out == 0).all(1) & (branch != 0).any(1)
            kept = ~gone
            torch.testing.assert_close(out[kept], branch[kept] / (1 - module.p))  # survivors are rescaled
            dropped[index] = int(gone.sum())
        return hook

    hooks = [b.drop_path.register_forward_hook(record(i)) for i, b in watched.items()]
    n = 1024
    torch.manual_seed(1234)
    with torch.no_grad():
        model(torch.randn(n, 3, 4, 4))
    for h in hooks:
        h.remove()
    for i, block in watched.items():
        p = block.drop_path.p
        assert p == pytest.approx(0.5 * (i + 1) / 54)
        sigma = math.sqrt(n * p * (1 - p))
        assert abs(dropped[i] - n * p) <= 4 * sigma + 1, (i, dropped[i], n * p)
    assert dropped[53] > 400  # the last block really drops about half of the samples


def test_option_a_shortcuts_have_no_parameters():
    a = cnnzoo.create_model("resnet20_cifar")
    b = cnnzoo.create_model("resnet20_cifar", shortcut="B")
    pads = [m for m in a.modules() if isinstance(m, ZeroPadShortcut)]
    assert len(pads) == 2 and all(count(m) == 0 for m in pads)
    # Option B adds exactly the two projections: 16->32 and 32->64, 1x1 conv + BN.
    assert count(b) - count(a) == (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64)
    assert not any(isinstance(m, ZeroPadShortcut) for m in b.modules())


def test_zero_pad_shortcut_is_subsampled_identity_plus_zero_channels():
    x = torch.randn(2, 16, 7, 7)
    y = ZeroPadShortcut(16, 32, 2)(x)
    assert y.shape == (2, 32, 4, 4)
    assert torch.equal(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0


def test_cifar_resnet_layout():
    model = cnnzoo.create_model("resnet56_cifar")
    assert [f.num_chs for f in model.feature_info] == [16, 16, 32, 64]
    assert [f.reduction for f in model.feature_info] == [1, 1, 2, 4]
    assert [len(model.get_submodule(f"layer{i}")) for i in (1, 2, 3)] == [9, 9, 9]
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


@pytest.mark.parametrize("name, cardinality", [("resnext29_8x64d", 8), ("resnext29_16x64d", 16)])
def test_resnext29_layout(name, cardinality):
    model = meta_model(name)
    assert [f.num_chs for f in model.feature_info] == [64, 256, 512, 1024]
    assert [f.reduction for f in model.feature_info] == [1, 1, 2, 4]
    for i, stage in enumerate(("layer1", "layer2", "layer3")):
        assert len(model.get_submodule(stage)) == 3
        conv = model.get_submodule(stage)[0].conv2
        assert conv.groups == cardinality and conv.out_channels == cardinality * 64 * 2 ** i


def test_resnet18_cifar_layout():
    model = cnnzoo.create_model("resnet18_cifar")
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert [f.reduction for f in model.feature_info] == [1, 1, 2, 4, 8]
    assert cnnzoo.model_info("resnet18").small_variant == "resnet18_cifar"


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="shortcut must be 'A'"):
        cnnzoo.create_model("resnet20_cifar", shortcut="C")
    with pytest.raises(ValueError, match="stem must be"):
        ResNet(BasicBlock, (1, 1), widths=(16, 32), stem="tiny")
    with pytest.raises(ValueError, match="use Bottleneck"):
        ResNet(BasicBlock, (1,), widths=(16,), groups=4)
