"""DenseNet, SqueezeNet and MobileNet v1/v2: torchvision parity, legacy DenseNet keys, checkpointing, blocks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.models.densenet import DenseNet
from cnnzoo.models.squeezenet import Fire
from conftest import assert_torchvision_parity

# Reference parameter counts: torchvision's metadata for the twins, computed from the layer specs otherwise.
EXACT_PARAMS = {
    "densenet121": 7_978_856,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet161": 28_681_000,
    "densenet264": 33_337_704,
    "densenet_bc_100_12_cifar": 769_162,
    "densenet_bc_190_40_cifar": 25_624_430,
    "squeezenet1_0": 1_248_424,
    "squeezenet1_1": 1_235_496,
    "mobilenet_v1": 4_231_976,
    "mobilenet_v1_050": 1_331_592,
    "mobilenet_v1_cifar": 3_217_226,
    "mobilenet_v2": 3_504_872,
    "mobilenet_v2_cifar": 2_236_682,
}


@pytest.mark.parametrize("name", sorted(EXACT_PARAMS))
def test_exact_parameter_count(name):
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == EXACT_PARAMS[name]


@pytest.mark.parametrize("name, size", [
    ("densenet121", 64), ("densenet161", 32), ("densenet169", 32), ("densenet201", 32),
    ("squeezenet1_0", 48), ("squeezenet1_1", 48), ("mobilenet_v2", 64),
])
def test_torchvision_weights_give_torchvision_outputs(name, size, tmp_path):
    assert cnnzoo.model_info(name).torchvision == name
    assert_torchvision_parity(name, getattr(torchvision.models, name)(), tmp_path, size=size)


def _to_legacy(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """torchvision's first DenseNet checkpoints: 'norm.1' for 'norm1' etc., and no BN batch counters."""
    out = {}
    for k, v in state.items():
        if k.endswith("num_batches_tracked"):
            continue
        for mod in ("norm", "relu", "conv"):
            for i in "12":
                k = k.replace(f".{mod}{i}.", f".{mod}.{i}.")
        out[k] = v
    return out


def test_legacy_densenet_checkpoint_loads(tmp_path):
    tv = torchvision.models.densenet121()
    for p in tv.parameters():
        nn.init.normal_(p, 0.0, 0.05)
    for name, b in tv.named_buffers():
        if name.endswith("running_mean"):
            nn.init.normal_(b, 0.0, 0.1)
    legacy = _to_legacy(tv.state_dict())
    assert "features.denseblock1.denselayer1.norm.1.weight" in legacy
    assert "features.denseblock4.denselayer16.conv.2.weight" in legacy
    assert not any(k.endswith("num_batches_tracked") for k in legacy)
    path = tmp_path / "densenet121-legacy.pth"
    torch.save(legacy, path)

    ours = cnnzoo.create_model("densenet121", weights=str(path)).eval()
    tv.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert (ours(x) - tv(x)).abs().max().item() < 1e-5
    assert ours.features.denseblock1.denselayer1.norm1.num_batches_tracked.item() == 0


def test_convert_state_dict_renames_only_legacy_dense_layer_keys():
    model = DenseNet(4, (1, 1), 8, small_input=True, num_classes=3)
    w = torch.ones(1)
    state = {
        "features.denseblock1.denselayer1.norm.1.running_mean": w,
        "features.denseblock1.denselayer1.conv.2.weight": w,
        "features.denseblock2.denselayer1.norm2.num_batches_tracked": torch.tensor(7),
        "features.transition1.norm.weight": w,
    }
    out = model.convert_state_dict(state)
    assert set(out) == {
        "features.denseblock1.denselayer1.norm1.running_mean",
        "features.denseblock1.denselayer1.norm1.num_batches_tracked",  # filled: its running mean is there
        "features.denseblock1.denselayer1.conv2.weight",
        "features.denseblock2.denselayer1.norm2.num_batches_tracked",
        "features.transition1.norm.weight",
    }
    assert out["features.denseblock2.denselayer1.norm2.num_batches_tracked"].item() == 7


def test_memory_efficient_densenet_matches_and_recomputes():
    torch.manual_seed(0)
    plain = DenseNet(8, (3, 3), 16, small_input=True, num_classes=5).train()
    efficient = DenseNet(8, (3, 3), 16, small_input=True, num_classes=5, memory_efficient=True).train()
    efficient.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 8, 8)

    calls = {"plain": 0, "efficient": 0}

    def counter(key):
        def hook(module, inputs, output):
            calls[key] += 1
        return hook

    outputs = {}
    for key, model in (("plain", plain), ("efficient", efficient)):
        for m in model.modules():
            if hasattr(m, "bottleneck"):
                m.norm1.register_forward_hook(counter(key))
        outputs[key] = model(x)
        outputs[key].square().mean().backward()

    assert torch.allclose(outputs["plain"], outputs["efficient"], atol=1e-6)
    for (name, p), q in zip(plain.named_parameters(), efficient.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6), name
    assert calls == {"plain": 6, "efficient": 12}  # the bottleneck really ran again in the backward pass


def test_fire_module_concatenates_its_expand_branches():
    fire = Fire(96, 16, 64, 48)
    assert fire(torch.randn(2, 96, 9, 9)).shape == (2, 112, 9, 9)
    model = cnnzoo.create_model("squeezenet1_0")
    fires = [m for m in model.features if isinstance(m, Fire)]
    # The paper's Table 1: fire2 ... fire9 output widths.
    assert [f.out_chs for f in fires] == [128, 128, 256, 256, 384, 384, 512, 512]
    assert [f.squeeze.out_channels for f in fires] == [16, 16, 32, 32, 48, 48, 64, 64]


def test_squeezenet_classifier_is_the_final_convolution():
    model = cnnzoo.create_model("squeezenet1_1")
    head = model.get_classifier()
    assert isinstance(head, nn.Conv2d) and head.kernel_size == (1, 1) and head.in_channels == 512
    model.reset_classifier(0)
    model.reset_classifier(10)  # a convolution again, not a linear layer after the Identity
    head = model.get_classifier()
    assert isinstance(head, nn.Conv2d) and head.out_channels == 10
    assert torch.count_nonzero(head.bias) == 0 and 0.005 < head.weight.std().item() < 0.02
    model.eval()
    with torch.no_grad():
        feats = model.forward_head(model.forward_features(torch.randn(2, 3, 17, 17)), pre_logits=True)
    assert feats.shape == (2, 512)


@pytest.mark.parametrize("name, count", [("mobilenet_v1", 13), ("mobilenet_v2", 17), ("mobilenet_v1_cifar", 13)])
def test_depthwise_convolutions_have_one_group_per_channel(name, count):
    model = cnnzoo.create_model(name)
    grouped = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert len(grouped) == count
    for m in grouped:
        assert m.groups == m.in_channels == m.out_channels and m.kernel_size == (3, 3)


@pytest.mark.parametrize("name, chans, side", [
    ("mobilenet_v1_cifar", 1024, 4), ("mobilenet_v2_cifar", 1280, 4), ("densenet_bc_100_12_cifar", 342, 8),
])
def test_cifar_variants_keep_a_useful_final_map(name, chans, side):
    model = cnnzoo.create_model(name).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, chans, side, side)


def test_mobilenet_v1_width_multiplier_scales_every_layer():
    full, half = cnnzoo.create_model("mobilenet_v1"), cnnzoo.create_model("mobilenet_v1_050")
    widths = [m.out_channels for m in full.modules() if isinstance(m, nn.Conv2d)]
    half_widths = [m.out_channels for m in half.modules() if isinstance(m, nn.Conv2d)]
    assert half_widths == [w // 2 for w in widths]
    assert half.num_features == 512


def test_mobilenet_v2_blocks_are_residual_exactly_where_shapes_match():
    model = cnnzoo.create_model("mobilenet_v2")
    flags = [m.use_res_connect for m in model.features[1:-1]]
    # t-c-n-s rows of the paper's Table 2: the repeats after the first of each row are residual.
    assert flags == [False, False, True, False, True, True, False, True, True, True, False, True, True,
                     False, True, True, False]
