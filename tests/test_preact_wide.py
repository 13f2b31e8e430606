"""Pre-activation ResNet and Wide ResNet: exact sizes, BN-ReLU-conv order, clean identities, dropout, drop-path."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.layers import DropPath, linear_decay
from cnnzoo.models.preact_resnet import PreActBasicBlock, PreActBottleneck, PreActResNet, preact_resnet_cifar
from cnnzoo.models.wide_resnet import wide_resnet_cifar

# name: (exact parameters at the default classes, the paper's rounded figure or None)
EXPECTED = {
    "preact_resnet18": (11_687_720, None),
    "preact_resnet34": (21_795_880, None),
    "preact_resnet50": (25_549_352, None),
    "preact_resnet101": (44_541_480, None),
    "preact_resnet152": (60_185_128, None),
    "preact_resnet18_cifar": (11_172_170, None),
    "preact_resnet164_cifar": (1_703_258, 1.7e6),
    "preact_resnet1001_cifar": (10_327_706, None),
    "wrn16_8_cifar": (10_961_370, 11.0e6),
    "wrn28_10_cifar": (36_479_194, 36.5e6),
    "wrn40_4_cifar": (8_949_210, 8.9e6),
    "wrn40_10_cifar": (55_841_754, None),
}


def _meta(name: str, **kwargs) -> PreActResNet:
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kwargs)


def _blocks(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (PreActBasicBlock, PreActBottleneck))]


def _last_convs(model: nn.Module) -> list[nn.Conv2d]:
    return [b.conv3 if isinstance(b, PreActBottleneck) else b.conv2 for b in _blocks(model)]


def test_the_registry_holds_exactly_these_models():
    assert set(cnnzoo.list_models("preact_resnet*")) | set(cnnzoo.list_models("wrn*")) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_exact_parameter_counts(name):
    exact, paper = EXPECTED[name]
    count = sum(p.numel() for p in _meta(name).parameters())
    assert count == exact == cnnzoo.model_info(name).params
    assert cnnzoo.model_info(name).params_approx == paper
    if paper:
        assert abs(count - paper) / paper < 0.01


def test_resnet1001_matches_the_paper_without_bn_affine_parameters():
    """The paper's 10.2M counts ResNet-1001's convolution and classifier weights, not BN's scales and shifts."""
    model = _meta("preact_resnet1001_cifar")
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    without_bn = sum(p.numel() for p in model.parameters()) - bn
    assert without_bn == 10_178_490
    assert round(without_bn / 1e5) / 10 == 10.2


@pytest.mark.parametrize("depth", [18, 34, 50, 101, 152])
def test_imagenet_convolutions_are_torchvision_resnets(depth):
    """Same convolutions and classifier as ResNet; only where the BNs sit differs."""
    def shapes(model):
        return Counter(tuple(m.weight.shape) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))

    with torch.device("meta"):
        tv = getattr(torchvision.models, f"resnet{depth}")()
    assert shapes(_meta(f"preact_resnet{depth}")) == shapes(tv)


@pytest.mark.parametrize("name, blocks, widths", [
    ("preact_resnet164_cifar", 18, [64, 128, 256]),
    ("preact_resnet1001_cifar", 111, [64, 128, 256]),
    ("wrn16_8_cifar", 2, [128, 256, 512]),
    ("wrn28_10_cifar", 4, [160, 320, 640]),
    ("wrn40_4_cifar", 6, [64, 128, 256]),
    ("wrn40_10_cifar", 6, [160, 320, 640]),
])
def test_cifar_layouts(name, blocks, widths):
    model = _meta(name)
    assert model.conv1.out_channels == 16 and model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert [len(model.get_submodule(f"layer{i}")) for i in (1, 2, 3)] == [blocks] * 3
    assert [f.num_chs for f in model.feature_info] == widths
    assert [f.reduction for f in model.feature_info] == [1, 2, 4]


def test_imagenet_models_point_to_the_cifar_form():
    for depth in (18, 34, 50, 101, 152):
        assert cnnzoo.model_info(f"preact_resnet{depth}").small_variant == "preact_resnet18_cifar"
    model = _meta("preact_resnet18_cifar")
    assert model.conv1.kernel_size == (3, 3) and isinstance(model.maxpool, nn.Identity)
    assert [f.num_chs for f in model.feature_info] == [64, 128, 256, 512]


def _tiny(block=PreActBottleneck, small_input=True, **kwargs) -> PreActResNet:
    return PreActResNet(block, (2, 2, 2), (4, 8, 16), stem_width=8, small_input=small_input, num_classes=3, **kwargs)


def _call_order(block: nn.Module, x: torch.Tensor) -> tuple[list[str], dict[str, torch.Tensor]]:
    """Names of the BN, ReLU, conv and dropout modules in the order the block calls them, and their inputs."""
    order, inputs = [], {}
    hooks = []
    for name, m in block.named_modules():
        if isinstance(m, (nn.BatchNorm2d, nn.ReLU, nn.Conv2d, nn.Dropout)):
            def hook(mod, args, name=name):
                order.append(name)
                inputs[name] = args[0].clone()
            hooks.append(m.register_forward_pre_hook(hook))
    with torch.no_grad():
        block(x)
    for h in hooks:
        h.remove()
    return order, inputs


@pytest.mark.parametrize("block_type", [PreActBasicBlock, PreActBottleneck])
@pytest.mark.parametrize("small_input", [True, False])
def test_every_branch_is_bn_relu_conv_and_projections_read_the_preactivation(block_type, small_input):
    model = _tiny(block_type, small_input).eval()
    for m in model.modules():  # non-trivial BN so that the pre-activation differs from the input
        if isinstance(m, nn.BatchNorm2d):
            nn.init.uniform_(m.weight, 0.5, 1.5)
            nn.init.normal_(m.bias, 0.0, 0.5)
    convs = 2 if block_type is PreActBasicBlock else 3
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(torch.randn(2, 3, 16, 16)))))
    for i, block in enumerate(_blocks(model)):
        stem_activated = i == 0 and not small_input  # its BN-ReLU is the stem's (paper, section 4.1)
        order, inputs = _call_order(block, x)
        branch = [type(block.get_submodule(n)) for n in order if n != "downsample"]
        if stem_activated:
            assert isinstance(block.bn1, nn.Identity) and isinstance(model.bn1, nn.BatchNorm2d)
            assert branch == [nn.Conv2d] + [nn.BatchNorm2d, nn.ReLU, nn.Conv2d] * (convs - 1)
        else:
            assert branch == [nn.BatchNorm2d, nn.ReLU, nn.Conv2d] * convs
        if block.downsample is not None:
            with torch.no_grad():
                pre = x if stem_activated else block.act1(block.bn1(x))
            assert not torch.equal(pre, x) or stem_activated
            assert torch.equal(inputs["downsample"], pre) and torch.equal(inputs["conv1"], pre)
        with torch.no_grad():
            x = block(x)


def test_the_network_ends_with_bn_relu():
    model = _tiny().eval()
    order, _ = _call_order(model, torch.randn(1, 3, 16, 16))
    assert order[-3:] == ["layer3.1.conv3", "norm", "act"]


@pytest.mark.parametrize("name, identities", [
    ("preact_resnet18", 5), ("preact_resnet18_cifar", 5), ("preact_resnet164_cifar", 51), ("wrn16_8_cifar", 3),
])
def test_identity_shortcuts_carry_the_input_unchanged(name, identities):
    """With the residual branch zeroed, a same-shape unit returns its input exactly, negatives included:
    nothing (no ReLU, no BN) sits on the identity path or after the addition."""
    model = cnnzoo.create_model(name).train()  # BN in training mode too: it must not touch the identity
    checked = 0
    with torch.no_grad():
        for block, last in zip(_blocks(model), _last_convs(model)):
            if block.downsample is not None:
                continue
            last.weight.zero_()
            x = torch.randn(2, block.conv1.in_channels, 6, 6)
            assert torch.equal(block(x.clone()), x)
            checked += 1
    assert checked == identities


def test_wrn_dropout_only_when_asked_and_only_in_training():
    plain = wide_resnet_cifar(10, 2, num_classes=4, zero_init_residual=False)  # so that every branch matters
    assert not any(isinstance(m, nn.Dropout) for m in plain.modules())
    dropped = wide_resnet_cifar(10, 2, num_classes=4, dropout=0.3, zero_init_residual=False)
    for block in _blocks(dropped):
        assert isinstance(block.drop, nn.Dropout) and block.drop.p == 0.3
        order, _ = _call_order(block, torch.randn(1, block.conv1.in_channels, 8, 8))
        assert order[order.index("drop") - 1:order.index("drop") + 2] == ["act2", "drop", "conv2"]
    dropped.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 16, 16)
    plain.eval(), dropped.eval()
    with torch.no_grad():
        assert torch.equal(dropped(x), plain(x))
    dropped.train()
    for m in dropped.modules():  # freeze BN statistics so only dropout can make two passes differ
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    with torch.no_grad():
        assert not torch.equal(dropped(x), dropped(x))


def test_dropout_is_refused_for_bottleneck_blocks():
    with pytest.raises(ValueError, match="drop_path_rate"):
        preact_resnet_cifar(164, dropout=0.3)


@pytest.mark.parametrize("depth", [4, 15, 27, 29])
def test_wrn_depth_must_be_6n_plus_4(depth):
    with pytest.raises(ValueError, match=r"6n\+4 .*got depth " + str(depth)):
        wide_resnet_cifar(depth, 2)


def test_wrn_widen_factor_must_be_positive():
    with pytest.raises(ValueError, match="widening factor"):
        wide_resnet_cifar(16, 0)


@pytest.mark.parametrize("depth", [2, 100, 165])
def test_preact_cifar_depth_must_be_9n_plus_2(depth):
    with pytest.raises(ValueError, match=r"9n\+2 .*got " + str(depth)):
        preact_resnet_cifar(depth)


@pytest.mark.parametrize("name", ["preact_resnet50", "preact_resnet164_cifar", "wrn28_10_cifar"])
def test_drop_path_rates_decay_linearly(name):
    model = _meta(name, drop_path_rate=0.2)
    rates = [b.drop_path.p for b in _blocks(model)]
    assert rates == linear_decay(0.2, len(rates))
    assert rates[-1] == pytest.approx(0.2)


def test_drop_path_is_the_identity_in_eval():
    plain = _tiny(PreActBasicBlock, zero_init_residual=False)  # so that every branch matters
    dropped = _tiny(PreActBasicBlock, drop_path_rate=0.5, zero_init_residual=False)
    dropped.load_state_dict(plain.state_dict())
    plain.eval(), dropped.eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(dropped(x), plain(x))


def test_every_unit_starts_as_the_identity_unless_asked_for_the_papers_init():
    assert all(not c.weight.any() for c in _last_convs(_tiny()))
    assert all(c.weight.std() > 0 for c in _last_convs(_tiny(zero_init_residual=False)))
    assert all(c.weight.std() > 0 for c in _last_convs(_tiny(PreActBasicBlock, zero_init_residual=False)))


def test_untrained_resnet1001_is_finite_in_eval():
    """With the paper's He init alone, 333 units in eval mode (BN still the identity) overflow float32."""
    model = cnnzoo.create_model("preact_resnet1001_cifar").eval()
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 3, 8, 8))).all()


def test_drop_path_drops_whole_residual_branches_in_training():
    block = PreActBasicBlock(8, 8, drop_path=0.5).eval()
    x = torch.randn(64, 8, 6, 6)
    with torch.no_grad():
        branch = block(x) - x
        block.train()
        block.bn1.eval(), block.bn2.eval()
        y = block(x)
    assert isinstance(block.drop_path, DropPath)
    dropped = torch.isclose(y, x, atol=1e-6).flatten(1).all(1)
    kept = torch.isclose(y, x + branch / 0.5, atol=1e-5).flatten(1).all(1)
    assert (dropped ^ kept).all()
    assert dropped.any() and kept.any()
