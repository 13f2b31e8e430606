"""Inception-v4 / Inception-ResNet-v2 and FractalNet: the papers' layouts and behaviours."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.layers import ConvNormAct
from cnnzoo.models.fractalnet import (
    PAPER_REGULARISATION,
    FractalBlock,
    FractalConv,
    FractalNet,
    local_drop_mask,
    sample_column,
)
from cnnzoo.models.inception_v4 import (
    InceptionA,
    InceptionResNetA,
    InceptionResNetC,
    InceptionV4,
    conv_factory,
)


def _meta(name: str, **kwargs) -> nn.Module:
    with torch.device("meta"):
        return cnnzoo.create_model(name, **kwargs).eval()


def _shapes(model: nn.Module, names: list[str], size: int) -> dict[str, tuple[int, ...]]:
    """Output shapes of the named submodules for one ``size`` x ``size`` image, on the meta device."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str):
        def hook(module, inputs, output) -> None:
            shapes.setdefault(name, tuple(output.shape))
        return hook

    hooks = [model.get_submodule(n).register_forward_hook(record(n)) for n in names]
    with torch.device("meta"):
        model(torch.empty(1, model.in_chans, size, size))
    for h in hooks:
        h.remove()
    return shapes


# --- Inception-v4 -------------------------------------------------------------------------------------


def test_inception_v4_grid_sizes_are_figure_9s():
    model = _meta("inception_v4")
    names = [f"features.{i}" for i in (0, 1, 2, 3, 4, 5, 9, 10, 17, 18, 21)]
    assert _shapes(model, names, 299) == {
        "features.0": (1, 32, 149, 149), "features.1": (1, 32, 147, 147), "features.2": (1, 64, 147, 147),
        "features.3": (1, 160, 73, 73), "features.4": (1, 192, 71, 71), "features.5": (1, 384, 35, 35),
        "features.9": (1, 384, 35, 35), "features.10": (1, 1024, 17, 17), "features.17": (1, 1024, 17, 17),
        "features.18": (1, 1536, 8, 8), "features.21": (1, 1536, 8, 8),
    }
    kinds = [type(m).__name__ for m in model.features[6:]]
    assert kinds == ["InceptionA"] * 4 + ["ReductionA"] + ["InceptionB"] * 7 + ["ReductionB"] + ["InceptionC"] * 3


def test_inception_a_parameters_follow_figure_4():
    block = InceptionA(conv_factory(None))
    convs = 384 * 96 + (384 * 64 + 64 * 96 * 9) + (384 * 64 + 64 * 96 * 9 + 96 * 96 * 9) + 384 * 96
    bns = 2 * (96 + 64 + 96 + 64 + 96 + 96 + 96)
    assert sum(p.numel() for p in block.parameters()) == convs + bns == 317_632


def test_reduction_a_uses_table_1_filter_counts():
    v4, irv2 = _meta("inception_v4"), _meta("inception_resnet_v2")
    for red, (k, l, m, n) in ((v4.features[10], (192, 224, 256, 384)), (irv2.mixed_6a, (256, 256, 384, 384))):
        assert red.branch0.conv.out_channels == n
        assert [c.conv.out_channels for c in red.branch1] == [k, l, m]
        assert red.branch0.conv.stride == (2, 2) and red.branch0.conv.padding == (0, 0)  # "V"


def test_batch_norm_epsilon_is_1e_3_everywhere():
    for name in ("inception_v4", "inception_resnet_v2"):
        eps = {m.eps for m in _meta(name).modules() if isinstance(m, nn.BatchNorm2d)}
        assert eps == {1e-3}


def test_valid_convolutions_leave_1x1_at_the_minimum_size():
    for name in ("inception_v4", "inception_resnet_v2"):
        with torch.device("meta"):
            assert _meta(name).forward_features(torch.empty(1, 3, 75, 75)).shape == (1, 1536, 1, 1)
        assert cnnzoo.model_info(name).min_size == 75


def test_keys_are_the_released_ones():
    v4 = _meta("inception_v4").state_dict()
    assert {"features.0.conv.weight", "features.21.branch2_3b.bn.running_var", "last_linear.weight"} <= v4.keys()
    irv2 = _meta("inception_resnet_v2").state_dict()
    assert {"conv2d_1a.conv.weight", "mixed_5b.branch1.1.conv.weight", "repeat.9.conv2d.bias",
            "repeat_1.19.branch1.2.bn.weight", "repeat_2.8.conv2d.weight", "block8.conv2d.bias",
            "conv2d_7b.bn.weight", "classif.bias"} <= irv2.keys()
    # conv-BN-ReLU units per figure: stem 3 + 1 + 6 + 1, A 7, Reduction-A 4, B 10, Reduction-B 6, C 10
    units = {n: sum(isinstance(m, ConvNormAct) for m in _meta(n).modules()) for n in ("inception_v4",
                                                                                     "inception_resnet_v2")}
    assert units["inception_v4"] == 11 + 4 * 7 + 4 + 7 * 10 + 6 + 3 * 10 == 149
    # released stem 5 + Mixed-5b 7, residual A 6, Reduction-A 4, residual B 4, Reduction-B 7, residual C 4, 1x1 1
    assert units["inception_resnet_v2"] == 12 + 10 * 6 + 4 + 20 * 4 + 7 + 10 * 4 + 1 == 204


# --- Inception-ResNet-v2 ------------------------------------------------------------------------------


def test_inception_resnet_v2_grid_sizes_and_widths():
    model = _meta("inception_resnet_v2")
    names = ["conv2d_2b", "conv2d_4a", "mixed_5b", "repeat", "mixed_6a", "repeat_1", "mixed_7a", "block8",
             "conv2d_7b"]
    assert _shapes(model, names, 299) == {
        "conv2d_2b": (1, 64, 147, 147), "conv2d_4a": (1, 192, 71, 71), "mixed_5b": (1, 320, 35, 35),
        "repeat": (1, 320, 35, 35), "mixed_6a": (1, 1088, 17, 17), "repeat_1": (1, 1088, 17, 17),
        "mixed_7a": (1, 2080, 8, 8), "block8": (1, 2080, 8, 8), "conv2d_7b": (1, 1536, 8, 8),
    }
    assert 320 + 384 + 384 == 1088 and 1088 + 384 + 288 + 320 == 2080  # Reduction-A / -B outputs


def test_residual_modules_are_scaled_by_0_17_0_1_0_2():
    model = _meta("inception_resnet_v2")
    assert [b.scale for b in model.repeat] == [0.17] * 10
    assert [b.scale for b in model.repeat_1] == [0.10] * 20
    assert [b.scale for b in model.repeat_2] == [0.20] * 9
    assert model.block8.scale == 1.0 and isinstance(model.block8.relu, nn.Identity)
    assert all(isinstance(b.relu, nn.ReLU) for b in (*model.repeat, *model.repeat_1, *model.repeat_2))


def test_residual_module_adds_the_scaled_linear_branch_then_relu():
    block = InceptionResNetA(conv_factory(None), scale=0.17).eval()
    captured = {}
    block.conv2d.register_forward_hook(lambda m, i, o: captured.update(up=o))
    x = torch.randn(2, 320, 9, 9)
    with torch.no_grad():
        out = block(x)
    torch.testing.assert_close(out, torch.relu(x + 0.17 * captured["up"]))
    assert block.conv2d.bias is not None  # the projection is linear, without BN


def test_last_8x8_module_has_no_relu():
    block = InceptionResNetC(conv_factory(None), scale=1.0, act=False).eval()
    x = -torch.ones(1, 2080, 3, 3)
    with torch.no_grad():
        assert (block(x) < 0).any()


def test_inception_depths_are_configurable():
    with torch.device("meta"):
        model = InceptionV4(depths=(1, 2, 1))
    assert [f.module for f in model.feature_info] == ["features.2", "features.3", "features.6", "features.9",
                                                      "features.11"]


# --- FractalNet ---------------------------------------------------------------------------------------


def _conv_calls(model: nn.Module) -> list[tuple[int, int, int]]:
    """Record (block, column, index) of every FractalConv call, in order."""
    calls: list[tuple[int, int, int]] = []
    for name, m in model.named_modules():
        if isinstance(m, FractalConv):
            parts = name.split(".")  # [blocks.]B.columns.C.I
            b, c, i = int(parts[-4]) if parts[0] == "blocks" else 0, int(parts[-2]), int(parts[-1])
            m.register_forward_hook(lambda mod, inp, out, key=(b, c, i): calls.append(key))
    return calls


def _small(**kwargs) -> FractalNet:
    return FractalNet(widths=(4, 8), num_columns=3, num_classes=5, **kwargs)


def test_fractal_expansion_layout():
    block = FractalBlock(3, 8, num_columns=4)
    assert [len(col) for col in block.columns] == [1, 2, 4, 8]
    assert sum(len(col) for col in block.columns) == 2 ** 4 - 1
    assert [len(block.ending_at(d)) for d in range(1, 9)] == [1, 2, 1, 3, 1, 2, 1, 4]  # Figure 1's joins
    assert [col[0].conv.in_channels for col in block.columns] == [3, 3, 3, 3]


def test_fractalnet20_cifar_layout_and_parameter_count():
    model = _meta("fractalnet20_cifar")
    assert model.num_columns == 3 and len(model.blocks) == 5
    assert sum(b.depth for b in model.blocks) == 20  # the deepest path: B * 2**(C-1)
    assert sum(isinstance(m, FractalConv) for m in model.modules()) == 5 * 7
    widths, ins = (64, 128, 256, 512, 512), (3, 64, 128, 256, 512)
    convs = sum(9 * w * (3 * i + 4 * w) for i, w in zip(ins, widths))  # 3 columns start from the input
    bns = 2 * 7 * sum(widths)
    assert sum(p.numel() for p in model.parameters()) == convs + bns + 512 * 10 + 10 == 33_724_618
    assert [(f.num_chs, f.reduction) for f in model.feature_info] == list(zip(widths, (2, 4, 8, 16, 32)))


def test_fractalnet34_layout():
    model = _meta("fractalnet34")
    assert model.stem.conv.kernel_size == (7, 7) and model.stem.conv.stride == (2, 2)
    assert 1 + sum(b.depth for b in model.blocks) + 1 == 34
    assert [b.columns[0][0].conv.out_channels for b in model.blocks] == [128, 256, 512, 1024]
    assert [type(p).__name__ for p in model.pools] == ["MaxPool2d"] * 3 + ["Identity"]
    shapes = _shapes(model, ["stem_pool", "pools.0", "pools.1", "pools.2", "pools.3"], 224)
    assert list(shapes.values()) == [(1, 64, 56, 56), (1, 128, 28, 28), (1, 256, 14, 14), (1, 512, 7, 7),
                                     (1, 1024, 7, 7)]


def test_eval_mode_is_the_mean_of_all_columns():
    torch.manual_seed(0)
    block = FractalBlock(3, 6, num_columns=3, dropout=0.3).eval()
    c0, c1, c2 = block.columns
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        j2 = (c2[1](c2[0](x)) + c1[0](x)) / 2
        expected = (c2[3](c2[2](j2)) + c1[1](j2) + c0[0](x)) / 3
        torch.testing.assert_close(block(x, drop_path=1.0), expected)


def test_eval_runs_every_convolution_once_despite_drop_path():
    model = _small(drop_path=0.9, global_drop_ratio=0.9).eval()
    calls = _conv_calls(model)
    with torch.no_grad():
        model(torch.randn(2, 3, 8, 8))
    assert sorted(calls) == sorted((b, c, i) for b in range(2) for c in range(3) for i in range(2 ** c))


def test_global_drop_path_keeps_exactly_one_column():
    model = _small(global_drop_ratio=1.0).train()
    calls = _conv_calls(model)
    x = torch.randn(4, 3, 8, 8)
    seen = set()
    for seed in range(12):
        calls.clear()
        torch.manual_seed(seed)
        out = model(x)
        columns = {c for _, c, _ in calls}
        assert len(columns) == 1
        (k,) = columns
        assert len(calls) == 2 * 2 ** k  # every convolution of that column, in both blocks
        model.select_column(k)
        torch.testing.assert_close(out, model(x))  # the single-column network's output
        model.select_column(None)
        seen.add(k)
    assert seen == {0, 1, 2}


def test_local_drop_path_never_drops_every_input_of_a_join():
    model = _small(drop_path=1.0).train()
    calls = _conv_calls(model)
    block = model.blocks[0]
    for seed in range(5):
        calls.clear()
        torch.manual_seed(seed)
        model(torch.randn(2, 3, 8, 8))
        # With every input dropped at p=1, each join keeps exactly one: one convolution per depth.
        for b in range(2):
            for depth in range(1, block.depth + 1):
                ran = [(c, i) for bb, c, i in calls if bb == b and (i + 1) * 2 ** (2 - c) == depth]
                assert len(ran) == 1
    assert all(any(local_drop_mask(4, 0.999)) for _ in range(500))


def test_local_drop_rate_and_global_share():
    torch.manual_seed(0)
    masks = torch.tensor([local_drop_mask(3, 0.15) for _ in range(4000)])
    assert abs((~masks).float().mean().item() - 0.15) < 0.02
    draws = [sample_column(4, 0.5) for _ in range(4000)]
    assert abs(draws.count(None) / 4000 - 0.5) < 0.03
    assert all(abs(draws.count(c) / 4000 - 0.125) < 0.02 for c in range(4))
    assert sample_column(4, 0.0) is None


def test_local_drop_path_is_per_join_in_training():
    model = _small(drop_path=0.5).train()
    calls = _conv_calls(model)
    torch.manual_seed(0)
    counts = set()
    for _ in range(10):
        calls.clear()
        model(torch.randn(2, 3, 8, 8))
        counts.add(len(calls))
    assert len(counts) > 1 and max(counts) <= 2 * 7


def test_deepest_column_alone():
    model = _small().eval()
    calls = _conv_calls(model)
    model.select_column(2)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        out = model(x)
        y = x
        for block, pool in zip(model.blocks, model.pools):
            for conv in block.columns[2]:
                y = conv(y)
            y = pool(y)
        torch.testing.assert_close(out, model.fc(y.mean((2, 3))))
    assert {c for _, c, _ in calls} == {2}
    with pytest.raises(ValueError, match="column must be in 0..2"):
        model.select_column(3)


def test_seeded_training_steps_are_reproducible():
    model = _small(**PAPER_REGULARISATION | {"dropout": (0.1, 0.2)}).train()
    x = torch.randn(2, 3, 8, 8)
    runs = []
    for seed in (7, 7, 8, 9, 10):
        torch.manual_seed(seed)
        runs.append(model(x))
    assert torch.equal(runs[0], runs[1])
    assert any(not torch.equal(runs[0], r) for r in runs[2:])


def test_paper_dropout_is_per_block_before_batch_norm():
    model = _meta("fractalnet20_cifar", **PAPER_REGULARISATION)
    rates = [{m.drop.p if isinstance(m.drop, nn.Dropout) else 0.0 for m in b.modules() if isinstance(m, FractalConv)}
             for b in model.blocks]
    assert rates == [{0.0}, {0.1}, {0.2}, {0.3}, {0.4}]
    assert model.drop_path == 0.15 and model.global_drop_ratio == 0.5
    unit = FractalConv(1, 1, dropout=0.5).train()
    order = []
    for name in ("conv", "drop", "bn", "act"):
        getattr(unit, name).register_forward_hook(lambda m, i, o, name=name: order.append(name))
    unit(torch.ones(2, 1, 4, 4))
    assert order == ["conv", "drop", "bn", "act"]  # the authors' order


def test_regularised_model_round_trips(tmp_path):
    model = cnnzoo.create_model("fractalnet20_cifar", **PAPER_REGULARISATION).eval()
    model.save(tmp_path / "f.safetensors")
    again = cnnzoo.load(tmp_path / "f.safetensors")
    assert again.drop_path == 0.15 and again.global_drop_ratio == 0.5
    assert [b.columns[0][0].drop.p for b in again.blocks[1:]] == [0.1, 0.2, 0.3, 0.4]
