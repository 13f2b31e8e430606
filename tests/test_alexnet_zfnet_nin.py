"""LeNet-5, AlexNet (2012 and torchvision's), ZFNet and NiN: exact layer figures from the papers, torchvision parity."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.analysis import analyze
from cnnzoo.layers import paper_lrn
from cnnzoo.models.alexnet import TowerLRN
from conftest import assert_torchvision_parity


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def layer_params(model: nn.Module) -> list[int]:
    return [sum(p.numel() for p in m.parameters()) for m in weighted_layers(model)]


def count_macs(model: nn.Module, size: int) -> int:
    """Multiply-accumulates of every conv and linear layer for one image, as torchvision's "GFLOPS"."""
    total = 0

    def hook(m: nn.Module, inputs, out: torch.Tensor) -> None:
        nonlocal total
        if isinstance(m, nn.Conv2d):
            total += out[0].numel() * m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
        else:
            total += m.in_features * m.out_features

    hooks = [m.register_forward_hook(hook) for m in weighted_layers(model)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return total


def map_sizes(model: nn.Module, size: int, kinds: tuple[type, ...]) -> list[tuple[int, int]]:
    """(channels, side) after every module of the given kinds in ``features``, in order."""
    sizes: list[tuple[int, int]] = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append((o.shape[1], o.shape[-1])))
             for m in model.features.modules() if isinstance(m, kinds)]
    with torch.no_grad():
        model.forward_features(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("size", [224, 63])
def test_alexnet_loads_torchvision_weights(tmp_path, size):
    assert_torchvision_parity("alexnet", torchvision.models.alexnet(), tmp_path, size=size)


def test_alexnet_keys_are_torchvisions():
    ours = cnnzoo.create_model("alexnet").state_dict()
    theirs = torchvision.models.alexnet().state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_alexnet2012_layers_as_the_paper():
    model = cnnzoo.create_model("alexnet2012")
    # conv1 34,944 ("35K"), conv2-5 with two towers in conv2/4/5, FC6-FC8.
    assert layer_params(model) == [34_944, 307_456, 885_120, 663_936, 442_624, 37_752_832, 16_781_312, 4_097_000]
    assert [m.groups for m in model.modules() if isinstance(m, nn.Conv2d)] == [1, 2, 1, 2, 2]
    assert map_sizes(model, 227, (nn.Conv2d, nn.MaxPool2d)) == [
        (96, 55), (96, 27), (256, 27), (256, 13), (384, 13), (384, 13), (256, 13), (256, 6)]


def test_alexnet2012_normalises_after_relu_before_pooling():
    types = [type(m).__name__ for m in cnnzoo.create_model("alexnet2012").features[:8]]
    assert types == ["Conv2d", "ReLU", "TowerLRN", "MaxPool2d", "Conv2d", "ReLU", "TowerLRN", "MaxPool2d"]


def test_dropout_drops_fc_outputs_in_the_paper_and_inputs_in_torchvision():
    def kinds(name: str) -> list[str]:
        return [type(m).__name__ for m in cnnzoo.create_model(name).classifier]

    assert kinds("alexnet2012") == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert kinds("alexnet") == ["Dropout", "Linear", "ReLU", "Dropout", "Linear", "ReLU", "Linear"]


def test_alexnet2012_paper_init():
    model = cnnzoo.create_model("alexnet2012")
    layers = weighted_layers(model)
    biases = [m.bias.unique().tolist() for m in layers]
    assert biases == [[0.0], [1.0], [0.0], [1.0], [1.0], [1.0], [1.0], [0.0]]
    fc6 = layers[5].weight
    assert abs(fc6.mean().item()) < 1e-4 and abs(fc6.std().item() - 0.01) < 1e-4


def test_tower_lrn_is_the_paper_formula_within_each_tower():
    torch.manual_seed(0)
    x = torch.randn(2, 96, 5, 5) * 10
    out = TowerLRN(2)(x)
    # b_i = a_i / (k + alpha * sum_{j=max(0,i-n/2)}^{min(N-1,i+n/2)} a_j^2)^beta, with N the tower's 48 maps.
    for i in (0, 10, 47, 48, 95):
        tower_lo = 0 if i < 48 else 48
        lo, hi = max(tower_lo, i - 2), min(tower_lo + 47, i + 2)
        expected = x[:, i] / (2 + 1e-4 * x[:, lo:hi + 1].square().sum(1)) ** 0.75
        assert torch.allclose(out[:, i], expected, rtol=1e-5, atol=1e-6)
    y = x.clone()
    y[:, 48:] = 0
    assert torch.equal(TowerLRN(2)(y)[:, :48], out[:, :48])
    assert torch.allclose(paper_lrn()(x)[:, 10], out[:, 10])


def test_zfnet_figure3_map_sizes():
    model = cnnzoo.create_model("zfnet")
    assert map_sizes(model, 224, (nn.Conv2d, nn.MaxPool2d)) == [
        (96, 110), (96, 55), (256, 26), (256, 13), (384, 13), (384, 13), (256, 13), (256, 6)]
    assert layer_params(model) == [14_208, 614_656, 885_120, 1_327_488, 884_992, 37_752_832, 16_781_312, 4_097_000]
    assert [m.groups for m in model.modules() if isinstance(m, nn.Conv2d)] == [1, 1, 1, 1, 1]


def test_zfnet_normalises_after_pooling():
    types = [type(m).__name__ for m in cnnzoo.create_model("zfnet").features[:8]]
    assert types == ["Conv2d", "ReLU", "MaxPool2d", "LocalResponseNorm", "Conv2d", "ReLU", "MaxPool2d",
                     "LocalResponseNorm"]


@pytest.mark.parametrize("name, macs", [
    ("alexnet", 714_188_480),  # torchvision's 0.714 "GFLOPS"
    ("alexnet2012", 724_406_816),
    ("zfnet", 1_168_032_896),
    ("nin", 1_100_188_800),
])
def test_macs(name, macs):
    info = cnnzoo.model_info(name)
    assert count_macs(cnnzoo.create_model(name).eval(), info.input_size[1]) == macs
    assert info.gmacs == round(macs / 1e9, 3)


@pytest.mark.parametrize("name, side32, side28", [
    ("alexnet_cifar", 4, 4), ("zfnet_cifar", 4, 4), ("nin_cifar", 8, 7),
])
def test_small_variants_take_32_and_28(name, side32, side28):
    model = cnnzoo.create_model(name).eval()
    with torch.no_grad():
        assert model.forward_features(torch.zeros(1, 3, 32, 32)).shape[-1] == side32
        assert model.forward_features(torch.zeros(1, 3, 28, 28)).shape[-1] == side28
        assert model(torch.zeros(2, 3, 28, 28)).shape == (2, 10)


def test_imagenet_alexnets_point_to_the_small_variant():
    assert cnnzoo.model_info("alexnet").small_variant == "alexnet_cifar"
    assert cnnzoo.model_info("alexnet2012").small_variant == "alexnet_cifar"


def test_nin_cifar_is_the_papers_net():
    model = cnnzoo.create_model("nin_cifar")
    convs = [(m.out_channels, m.kernel_size[0]) for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [(192, 5), (160, 1), (96, 1), (192, 5), (192, 1), (192, 1), (192, 3), (192, 1), (10, 1)]
    assert [type(m).__name__ for m in model.features if isinstance(m, (nn.MaxPool2d, nn.AvgPool2d))] == [
        "MaxPool2d", "AvgPool2d"]
    assert [m.p for m in model.features if isinstance(m, nn.Dropout)] == [0.5, 0.5]
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert map_sizes(model, 32, (nn.MaxPool2d, nn.AvgPool2d)) == [(96, 16), (192, 8)]


def test_nin_imagenet_is_the_caffe_net():
    model = cnnzoo.create_model("nin")
    assert layer_params(model) == [34_944, 9_312, 9_312, 614_656, 65_792, 65_792, 885_120, 147_840, 147_840,
                                   3_539_968, 1_049_600, 1_025_000]
    assert map_sizes(model, 224, (nn.MaxPool2d,)) == [(96, 27), (256, 13), (384, 6)]


def test_nin_classifier_is_the_last_1x1_conv():
    model = cnnzoo.create_model("nin_cifar").eval()
    assert model.get_classifier() is model.classifier
    assert isinstance(model.classifier, nn.Conv2d) and model.classifier.kernel_size == (1, 1)
    assert model.num_features == model.classifier.in_channels == 192
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        logits = model(x)
        feats = model.forward_head(model.forward_features(x), pre_logits=True)
        assert (logits >= 0).all()  # the class maps pass the mlpconv ReLU before averaging
        model.reset_classifier(0)
        assert torch.equal(model(x), feats)
        model.reset_classifier(5)
    assert isinstance(model.classifier, nn.Conv2d) and model.classifier.out_channels == 5
    with torch.no_grad():
        assert model(x).shape == (2, 5)


def test_lenet5_batchnorm_variant():
    plain = cnnzoo.create_model("lenet5", act="relu", pool="max")
    bn = cnnzoo.create_model("lenet5", act="relu", pool="max", norm="bn")
    # BN replaces the biases of C1, C3, C5 and F6 (6 + 16 + 120 + 84) with a scale and a shift each.
    assert sum(p.numel() for p in plain.parameters()) == 61_706
    assert sum(p.numel() for p in bn.parameters()) == 61_706 + 226
    assert [k for k in plain.state_dict() if "bn" in k] == []
    assert [n for n, m in bn.named_modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))] == \
        ["bn1", "bn2", "bn3", "bn4"]
    assert bn.conv1.bias is None and bn.fc1.bias is None and bn.fc.bias is not None
    assert analyze(bn, (1, 32, 32)).totals.params == 61_932
    assert bn(torch.randn(2, 1, 32, 32)).shape == (2, 10)
    with pytest.raises(cnnzoo.ModelArgumentError, match="norm None or 'bn'"):
        cnnzoo.create_model("lenet5", norm="ln")


@pytest.mark.parametrize("shape", [(4, 6, 28, 28), (3, 16, 10, 10), (2, 3, 7, 9)])
@pytest.mark.parametrize("values", ["random", "ties"])
def test_lenet5_max_pool_fast_path_matches_max_pool2d_bit_for_bit(shape, values):
    """LeNet-5's MaxPool2x2 is nn.MaxPool2d(2): the same outputs and gradients (ties: the first maximum)."""
    pool = cnnzoo.create_model("lenet5", act="relu", pool="max").pool1
    assert isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride) == (2, 2)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=g)
    x = (x.round() if values == "ties" else x).requires_grad_()
    grad = torch.randn(nn.functional.max_pool2d(x, 2).shape, generator=g)
    y, (dx,) = pool(x), torch.autograd.grad(pool(x), x, grad)
    y0, (dx0,) = nn.functional.max_pool2d(x, 2), torch.autograd.grad(nn.functional.max_pool2d(x, 2), x, grad)
    assert torch.equal(y, y0) and torch.equal(dx, dx0)
