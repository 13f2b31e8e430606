"""The architecture analyzer: exact figures for the lecture's exercises, torchvision's published MACs,
fvcore's counts, hand-computed and empirical receptive fields, and the CLI."""

from __future__ import annotations

import functools
import json
import math
import warnings

import pytest
import torch
import torchvision
from torch import nn

import cnnzoo
from cnnzoo.analysis import Analysis, analyze
from cnnzoo.analysis import exercises as ex
from cnnzoo.cli import main

# Conv + linear MACs of torchvision's models at their default crop, measured by the analyzer; each
# rounds to the "GFLOPS" in torchvision 0.29.1's weights metadata (checked below).
TV_MACS = {
    "alexnet": 714_188_480,
    "vgg11": 7_609_090_048,
    "vgg11_bn": 7_609_090_048,
    "vgg13": 11_308_466_176,
    "vgg13_bn": 11_308_466_176,
    "vgg16": 15_470_264_320,
    "vgg16_bn": 15_470_264_320,
    "vgg19": 19_632_062_464,
    "vgg19_bn": 19_632_062_464,
    "googlenet": 1_498_376_192,
    "inception_v3": 5_713_216_096,
    "resnet18": 1_814_073_344,
    "resnet34": 3_663_761_408,
    "resnet50": 4_089_184_256,
    "resnet101": 7_801_405_440,
    "resnet152": 11_513_626_624,
    "resnext50_32x4d": 4_230_479_872,
    "resnext101_32x8d": 16_414_015_488,
    "wide_resnet50_2": 11_398_021_120,
    "wide_resnet101_2": 22_753_050_624,
    "densenet121": 2_834_161_664,
    "densenet161": 7_727_907_072,
    "densenet169": 3_359_843_328,
    "densenet201": 4_291_365_888,
    "squeezenet1_0": 818_924_576,
    "squeezenet1_1": 349_151_936,
    "mobilenet_v2": 300_774_272,
    "vit_b_16": 17_563_828_224,  # not CNNs: attention and matmul counted too
    "swin_t": 4_490_566_656,
}
# The ones built and traced here (the rest are covered through the registry's torchvision twins).
TV_BUILT = ["alexnet", "vgg16", "googlenet", "inception_v3", "resnet18", "resnet50", "resnet152",
            "resnext50_32x4d", "densenet121", "squeezenet1_0", "mobilenet_v2", "vit_b_16", "swin_t"]


def tv_meta(name: str) -> nn.Module:
    with warnings.catch_warnings(), torch.device("meta"):
        warnings.simplefilter("ignore")
        return torchvision.models.get_model(name, weights=None)


def tv_size(name: str) -> int:
    return torchvision.models.get_model_weights(name).DEFAULT.transforms().crop_size[0]


@functools.cache
def zoo(name: str) -> Analysis:
    return analyze(name)


def sizes(a: Analysis) -> list[int]:
    """Receptive-field sizes after each sliding window (convolution or pooling)."""
    return [r.field.size[0] for r in a.rows if r.window is not None]


# --- the lecture's exercises, one call each ---------------------------------------------------------

def test_alexnet_conv1_pool1():
    a = analyze(ex.alexnet_conv1_pool1(), (3, 227, 227))
    conv1, pool1 = a.row("conv1"), a.row("pool1")
    assert conv1.output == (96, 55, 55)
    assert conv1.params == 34_944 == 11 * 11 * 3 * 96 + 96
    assert pool1.output == (96, 27, 27)
    assert pool1.params == 0
    assert (conv1.field.size, conv1.field.jump) == ((11, 11), (4, 4))
    assert (pool1.field.size, pool1.field.jump) == ((19, 19), (8, 8))


def test_three_3x3_against_one_7x7():
    three = analyze(ex.conv_stack(3, 3, 64), (64, 56, 56))
    one = analyze(ex.conv_stack(7, 1, 64), (64, 56, 56))
    assert three.totals.field.size == one.totals.field.size == (7, 7)
    assert three.totals.params == 27 * 64**2 == 110_592
    assert one.totals.params == 49 * 64**2 == 200_704


def test_two_3x3_against_5x5_at_128_channels():
    two = analyze(ex.conv_stack(3, 2, 128), (128, 28, 28))
    one = analyze(ex.conv_stack(5, 1, 128), (128, 28, 28))
    assert (two.totals.params, one.totals.params) == (294_912, 409_600)
    assert two.totals.field.size == one.totals.field.size == (5, 5)


def test_1x1_bottleneck():
    assert analyze(ex.conv_stack(3, 1, 128), (128, 28, 28)).totals.params == 147_456
    b = analyze(ex.bottleneck(128, 32), (128, 28, 28))
    assert b.totals.params == 40_960
    assert [r.params for r in b.rows if r.kind == "conv"] == [4_096, 36_864]


def test_inception_naive_against_bottleneck():
    naive = analyze(ex.inception_naive(), (256, 28, 28))
    assert naive.totals.macs == 854_196_224
    assert [r.macs for r in naive.rows if r.kind == "conv"] == [25_690_112, 346_816_512, 481_689_600]
    assert naive.totals.output == (672, 28, 28)
    bottle = analyze(ex.inception_bottleneck(), (256, 28, 28))
    assert bottle.totals.macs == 271_351_808  # the slide says 358M; its own terms add up to this
    assert bottle.totals.output == (480, 28, 28)
    cat = bottle.row("", "cat")
    assert cat.mem_elements == 480 * 28 * 28 and cat.field.size == (5, 5)


def test_vgg16_memory_and_parameters_by_layer():
    a = zoo("vgg16")
    assert a.totals.params == 138_357_544
    assert a.row("features.0").mem_elements == 224 * 224 * 64
    assert a.row("features.0").params == 1_792
    assert a.row("classifier.0").params == 102_764_544
    # The slide's memory column: input, conv, pool and FC outputs. It sums to 15,237,608 (~61 MB), not 24M.
    column = [r for r in a.rows if r.kind in ("input", "conv", "linear") or r.op == "max_pool2d"]
    assert sum(r.mem_elements for r in column) == 15_237_608
    # torchvision's layout adds AdaptiveAvgPool2d(7), a copy of pool5; ReLUs are in place.
    assert a.row("avgpool").mem_elements == 25_088
    assert a.totals.activation_elements == 15_262_696
    assert a.totals.activation_bytes == 4 * 15_262_696
    assert max(a.rows, key=lambda r: r.mem_elements).name == "features.0"  # memory early
    assert max(a.rows, key=lambda r: r.params).name == "classifier.0"  # parameters late
    assert sizes(a) == [3, 5, 6, 10, 14, 16, 24, 32, 40, 44, 60, 76, 92, 100, 132, 164, 196, 212]


def test_googlenet_alexnet_vgg_parameters():
    params = {n: analyze(tv_meta(n), (3, 224, 224)).totals.params for n in ("googlenet", "alexnet", "vgg16")}
    assert params == {"googlenet": 13_004_888, "alexnet": 61_100_840, "vgg16": 138_357_544}
    g = analyze(tv_meta("googlenet"), (3, 224, 224))
    aux = [r for r in g.rows if r.kind == "unused"]  # auxiliary heads: not called in eval, still counted
    assert {r.name.split(".")[0] for r in aux} == {"aux1", "aux2"}
    assert g.totals.params - sum(r.params for r in aux) == 6_624_904


# --- exactness against torchvision, fvcore and sum(p.numel()) ---------------------------------------

@pytest.mark.parametrize("name", TV_BUILT)
def test_torchvision_published_macs(name):
    model = tv_meta(name)
    a = analyze(model, (3, tv_size(name), tv_size(name)))
    assert a.totals.macs == TV_MACS[name]
    published = torchvision.models.get_model_weights(name).DEFAULT.meta["_ops"]
    assert round(a.totals.macs / 1e9, 3) == published
    assert a.totals.params == sum(p.numel() for p in model.parameters())
    assert not a.totals.uncounted_ops


@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_registered_model_rows_add_up(name):
    info = cnnzoo.model_info(name)
    with torch.device("meta"):
        model = cnnzoo.create_model(name)
    a = analyze(model, info.input_size)
    t = a.totals
    assert t.params == sum(p.numel() for p in model.parameters())
    assert t.buffers == sum(b.numel() for b in model.buffers())
    assert t.trainable == t.params and t.frozen == 0
    assert sum(r.params for r in a.rows) == t.params
    assert sum(r.macs for r in a.rows) == t.macs
    assert sum(r.flops for r in a.rows) == t.flops == 2 * t.macs + t.other_flops
    assert sum(r.mem_elements for r in a.rows) == t.activation_elements
    assert t.output == (model.num_classes,)
    assert not t.uncounted_ops
    if info.torchvision:
        assert round(t.macs / 1e9, 3) == info.gmacs
        if info.torchvision in TV_MACS and info.input_size[1] == tv_size(info.torchvision):
            assert t.macs == TV_MACS[info.torchvision]


def test_fvcore_counts_agree():
    fvcore = pytest.importorskip("fvcore.nn")
    model = torchvision.models.resnet18().eval()
    x = torch.randn(1, 3, 64, 64)
    counts = fvcore.FlopCountAnalysis(model, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    theirs = dict(counts.by_operator())
    a = analyze(model, (3, 64, 64))

    def ours(op: str) -> int:
        return sum(r.macs or r.flops for r in a.rows if r.op == op)

    assert theirs["conv"] == ours("conv2d") == 148_045_824
    assert theirs["linear"] == ours("linear") == 512_000
    assert theirs["batch_norm"] == ours("batch_norm")  # 2 per element in eval
    assert theirs["adaptive_avg_pool2d"] == ours("adaptive_avg_pool2d")


def test_matmul_macs_agree_with_fvcore():
    fvcore = pytest.importorskip("fvcore.nn")

    class Gram(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Parameter(torch.randn(16, 8))

        def forward(self, x):
            y = x.flatten(2).transpose(1, 2) @ self.proj  # N x HW x 8
            return torch.matmul(y.transpose(1, 2), y)  # N x 8 x 8

    model = Gram()
    theirs = fvcore.FlopCountAnalysis(model, torch.randn(1, 16, 4, 4)).unsupported_ops_warnings(False).total()
    a = analyze(model, (16, 4, 4))
    assert a.totals.macs == theirs == 16 * 8 * 16 + 8 * 8 * 16
    assert a.totals.params == 128


# --- receptive fields ---------------------------------------------------------------------------------

def test_alexnet_receptive_fields():
    a = analyze(tv_meta("alexnet"), (3, 224, 224))
    assert sizes(a) == [11, 19, 51, 67, 99, 131, 163, 195]
    assert [r.field.jump[0] for r in a.rows if r.window is not None] == [4, 8, 8, 16, 16, 16, 16, 32]
    assert a.totals.field.size == (195, 195)


def test_resnet50_stem_and_output():
    a = analyze(tv_meta("resnet50"), (3, 224, 224))
    conv1, pool = a.row("conv1"), a.row("maxpool")
    assert (conv1.field.size, conv1.field.jump, conv1.field.start) == ((7, 7), (2, 2), (0, 0))
    assert (pool.field.size, pool.field.jump, pool.field.start) == ((11, 11), (4, 4), (0, 0))
    assert (a.totals.field.size, a.totals.field.jump) == ((427, 427), (32, 32))
    assert a.row("fc").field.whole


def test_stacked_dilated_and_valid_convs():
    net = nn.Sequential(nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3), nn.Conv2d(1, 1, 3, dilation=2), nn.Conv2d(1, 1, 2, 2))
    a = analyze(net, (1, 32, 32))
    convs = [r for r in a.rows if r.kind == "conv"]
    assert [r.field.size[0] for r in convs] == [3, 5, 9, 10]
    assert [r.field.start[0] for r in convs] == [1, 2, 4, 4.5]
    assert [r.field.jump[0] for r in convs] == [1, 1, 1, 2]


def test_conv1d_has_one_axis():
    net = nn.Sequential(nn.Conv1d(2, 4, 5, stride=2), nn.ReLU(), nn.MaxPool1d(2))
    a = analyze(net, (2, 100))
    assert a.totals.field.size == (7,) and a.totals.field.jump == (4,)
    assert a.totals.output == (4, 24)
    assert a.totals.macs == 4 * 48 * 2 * 5


class Residual(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.down = nn.Conv2d(cin, cout, 1, stride=2)

    def forward(self, x):
        return torch.relu(self.conv2(torch.relu(self.conv1(x))) + self.down(x))


class Branches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(2, 2, 1)
        self.b3 = nn.Conv2d(2, 2, 3, padding=1)
        self.b5 = nn.Sequential(nn.Conv2d(2, 2, 1), nn.Conv2d(2, 2, 5, padding=2))
        self.pool = nn.AvgPool2d(3, 1, 1)
        self.head = nn.Conv2d(8, 2, 3, stride=2)

    def forward(self, x):
        return self.head(torch.cat([self.b1(x), self.b3(x), self.b5(x), self.pool(x)], 1))


class Dense(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(2, 2, 3, padding=1)
        self.c2 = nn.Conv2d(4, 2, 3, dilation=2, padding=2)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x):
        x = torch.cat([x, self.c1(x)], 1)
        x = torch.cat([x, self.c2(x)], 1)
        return self.pool(nn.functional.pad(x, (1, 0, 2, 0)))


EMPIRICAL = {
    "stack": (nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AvgPool2d(2), nn.Conv2d(3, 3, 3, stride=2, padding=1),
                            nn.Conv2d(3, 3, 3, dilation=2, padding=2), nn.AvgPool2d(3, 1, 1), nn.Conv2d(3, 2, 5)), 64),
    "residual": (nn.Sequential(Residual(2, 3), Residual(3, 3)), 32),
    "branches": (Branches(), 24),
    "dense": (Dense(), 24),
}


@pytest.mark.parametrize("name", list(EMPIRICAL))
def test_receptive_field_matches_gradients(name):
    """Positive weights and inputs: an input pixel gets a gradient from an output position iff it lies in
    that position's receptive field (average pools, since a max-pool routes gradients to one pixel)."""
    net, size = EMPIRICAL[name]
    a = analyze(net, (2, size, size))
    f = a.rows[-1].field
    net = net.double()
    with torch.no_grad():
        for p in net.parameters():
            p.uniform_(0.1, 1.0)

    def interval(axis: int, k: int) -> tuple[int, int]:
        s = f.spans[axis]
        return s.lo + k * s.jump, s.hi + k * s.jump

    # output positions whose field lies inside the image, first, middle and last along each axis
    valid = [[k for k in range(n) if interval(axis, k)[0] >= 0 and interval(axis, k)[1] < size]
             for axis, n in enumerate(a.totals.output[1:])]
    assert all(valid)
    picks = [(valid[0][0], valid[1][0]), (valid[0][len(valid[0]) // 2], valid[1][-1]), (valid[0][-1], valid[1][-1])]
    for i, j in picks:
        x = torch.ones(1, 2, size, size, dtype=torch.float64, requires_grad=True)
        net(x)[0, :, i, j].sum().backward()
        hit = x.grad[0].abs().sum(0) > 0
        rows, cols = hit.any(1).nonzero().flatten(), hit.any(0).nonzero().flatten()
        assert (rows.min().item(), rows.max().item()) == interval(0, i)
        assert (cols.min().item(), cols.max().item()) == interval(1, j)


# --- behaviour --------------------------------------------------------------------------------------

def test_functional_operations_are_rows():
    a = analyze(tv_meta("resnet18"), (3, 224, 224))
    add = a.row("layer1.0", "add_")
    assert add.kind == "elementwise" and add.flops == 64 * 56 * 56 and add.note == "in-place"
    assert a.row("", "flatten").note == "view"
    assert a.row("layer1.0.relu").op == "relu"
    g = analyze(tv_meta("googlenet"), (3, 224, 224))
    assert g.row("inception3a", "cat").output == (256, 28, 28)


def test_stacked_rows_keep_the_stacked_axis():
    """FractalNet joins columns with ``torch.stack(ys).mean(0)``: the stack puts the batch axis second, and
    the row's per-sample shape is the stacked one, whose elements are the row's memory."""
    a = analyze("fractalnet20_cifar")
    stacks = [(r.name, r.output, r.mem_elements) for r in a.rows if r.op == "stack"][:4]
    assert stacks == [("blocks.0", (2, 64, 32, 32), 131_072), ("blocks.0", (3, 64, 32, 32), 196_608),
                      ("blocks.1", (2, 128, 16, 16), 65_536), ("blocks.1", (3, 128, 16, 16), 98_304)]
    assert all(r.mem_elements == math.prod(r.output) for r in a.rows if r.op == "stack")
    assert [r.output for r in a.rows if r.op == "mean"][:2] == [(64, 32, 32), (64, 32, 32)]
    deep = analyze("fractalnet34")
    join = next(r for r in deep.rows if r.op == "stack")
    assert (join.name, join.output, join.mem_elements) == ("blocks.0", (2, 128, 56, 56), 802_816)


class _Moves(nn.Module):
    def forward(self, x):
        y = torch.stack([x, x], 1)  # 1x2x4x5x6: the batch stays first
        z = torch.stack([x, x, x])  # 3x1x4x5x6
        w = z.transpose(0, 1).transpose(0, 1).sum(0)  # back to 1x4x5x6
        return y.mean(1) + w + x.unsqueeze(0).squeeze(0)


def test_the_batch_axis_is_followed_through_stacks_transposes_and_reductions():
    a = analyze(_Moves(), (4, 5, 6))
    assert [(r.op, r.output) for r in a.rows[1:]] == [
        ("stack", (2, 4, 5, 6)), ("stack", (3, 4, 5, 6)), ("transpose", (3, 4, 5, 6)), ("transpose", (3, 4, 5, 6)),
        ("sum", (4, 5, 6)), ("mean", (4, 5, 6)), ("add", (4, 5, 6)), ("unsqueeze", (1, 4, 5, 6)),
        ("squeeze", (4, 5, 6)), ("add", (4, 5, 6))]
    assert a.totals.output == (4, 5, 6)


def test_depth_collapses_blocks_with_summed_figures():
    a = analyze(tv_meta("resnet50"), (3, 224, 224))
    rows = a.collapse(1)
    assert [r.name for r in rows] == ["input", "conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3",
                                      "layer4", "avgpool", "", "fc"]
    for key in ("params", "macs", "flops", "mem_elements"):
        assert sum(getattr(r, key) for r in rows) == sum(getattr(r, key) for r in a.rows)
    layer4 = rows[8]
    assert layer4.output == (2048, 7, 7) and layer4.field.size == (427, 427)
    assert [r.name for r in a.collapse(2)][5:8] == ["layer1.0", "layer1.1", "layer1.2"]


def test_real_module_is_analysed_on_meta_and_left_untouched():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(x.device.type)
            return x

    model = nn.Sequential(nn.Conv2d(3, 4, 3), Probe(), nn.BatchNorm2d(4)).train()
    before = [p.detach().clone() for p in model.parameters()]
    a = analyze(model, (3, 16, 16))
    assert seen == ["meta"]
    assert model.training and all(m.training for m in model.modules())
    assert all(p.device.type == "cpu" and torch.equal(p, b) for p, b in zip(model.parameters(), before))
    assert a.totals.params == 3 * 4 * 9 + 4 + 8 and a.totals.buffers == 4 + 4 + 1


def test_lazy_module_materialises_on_meta():
    model = nn.Sequential(nn.LazyConv2d(8, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    a = analyze(model, (3, 8, 8))
    assert a.totals.params == 8 * 27 + 8 + 288 * 4 + 4
    assert a.totals.macs == 8 * 36 * 27 + 288 * 4
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)  # the original stays lazy


def test_frozen_parameters_and_training_memory():
    model = nn.Sequential(nn.Linear(10, 5), nn.ReLU(), nn.Linear(5, 2))
    model[0].requires_grad_(False)
    a = analyze(model, (10,), dtype="fp32")
    assert (a.totals.trainable, a.totals.frozen) == (12, 55)
    assert a.totals.activation_elements == 10 + 5 + 5 + 2  # input, Linear, ReLU (not in place), Linear
    m = a.training_memory(batch_size=4, optimizer="adam")
    assert (m.weights, m.gradients, m.optimizer_state, m.activations) == (67 * 4, 12 * 4, 24 * 4, 4 * 22 * 4)
    assert m.total == m.weights + m.gradients + m.optimizer_state + m.activations
    half = analyze(model, (10,), dtype="bf16")
    assert half.totals.activation_bytes == 2 * half.totals.activation_elements


def test_shared_module_counts_parameters_once():
    conv = nn.Conv2d(4, 4, 3, padding=1)
    a = analyze(nn.Sequential(conv, nn.ReLU(), conv), (4, 8, 8))
    assert a.totals.params == 4 * 4 * 9 + 4
    assert a.totals.macs == 2 * 4 * 8 * 8 * 4 * 9
    assert [r.field.size[0] for r in a.rows if r.kind == "conv"] == [3, 5]


def test_input_errors_name_the_layer():
    with pytest.raises(cnnzoo.InputSizeError, match=r"features\.30 \(MaxPool2d\).*512x1x1"):
        analyze("vgg16", (3, 20, 20))
    with pytest.raises(cnnzoo.InputSizeError, match=r"features\.0 \(Conv2d\) expects 3 channels.*1x224x224"):
        analyze("vgg16", (1, 224, 224))
    with pytest.raises(cnnzoo.InputSizeError, match=r"features\.5 \(MaxPool2d\).*192x2x2"):
        analyze(tv_meta("alexnet"), (3, 30, 30))
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Flatten(), nn.Linear(8 * 6 * 6, 10))
    with pytest.raises(cnnzoo.InputSizeError, match=r"layer 2 \(Linear\) expects 288 features but receives 512"):
        analyze(net, (3, 10, 10))
    with pytest.raises(cnnzoo.CnnzooError, match="input_size"):
        analyze(net)


# --- the command line ---------------------------------------------------------------------------------

def test_cli_summary_formats(capsys):
    assert main(["summary", "vgg16", "--format", "json", "--batch-size", "8", "--optimizer", "sgd"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["params"] == 138_357_544 and data["totals"]["macs"] == 15_470_264_320
    assert data["rows"][1]["output"] == [64, 224, 224] and data["rows"][1]["kernel"] == [3, 3]
    assert data["training_memory"]["optimizer_state_bytes"] == 0
    assert data["training_memory"]["activations_bytes"] == 8 * 4 * 15_262_696
    assert main(["summary", "lenet5", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("index,name,type") and len(lines) == 1 + len(zoo("lenet5").rows)
    assert main(["summary", "resnet18", "--format", "markdown", "--depth", "1", "--dtype", "bf16"]) == 0
    out = capsys.readouterr().out
    assert "| `layer1` | Sequential | 64x56x56 |" in out and "bf16" in out
    assert main(["summary", "exercise:inception-bottleneck"]) == 0
    assert "271,351,808" in capsys.readouterr().out


def test_cli_compare_and_plots(capsys, tmp_path):
    chart, bars = tmp_path / "complexity.png", tmp_path / "vgg.png"
    with pytest.warns(UserWarning, match="left off the chart: lenet5"):
        assert main(["compare", "vgg16", "resnet18", "lenet5", "--plot", str(chart)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].split()[:4] == ["vgg16", "3x224x224", "138,357,544", "15.470"]
    assert out[3].split()[-3:] == ["435", "32", f"{cnnzoo.model_info('resnet18').top1:g}"]
    assert out[4].split()[-1] == "—"
    assert chart.stat().st_size > 10_000
    assert main(["summary", "vgg16", "--plot", str(bars)]) == 0
    assert bars.stat().st_size > 10_000


def test_cli_errors_are_one_line(capsys):
    assert main(["summary", "vgg16", "--input", "3x20x20"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "features.30 (MaxPool2d)" in err
    with pytest.raises(SystemExit) as exit_:
        main(["summary", "vgg16", "--input", "3x"])
    assert exit_.value.code == 2
    assert main(["summary", "exercise:nope"]) == 2
