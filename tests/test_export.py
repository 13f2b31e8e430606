"""``cnnzoo export`` and :mod:`cnnzoo.runtime.export`: every registered model exports to ONNX and matches eager PyTorch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.runtime.export import ExportError, export_program, export_torchscript, load_exported, onnx_bytes, verify

pytest.importorskip("onnxruntime")

#: models refused by every exporter, with the reason's words (none today: keep it that way)
REFUSED: dict[str, str] = {}
#: above this many parameters an export takes seconds (VGG's 25088 x 4096 layer at any input size)
BIG = 40_000_000
#: a thousand layers: tracing alone takes seconds
DEEP = {"preact_resnet1001_cifar"}


def scrambled(name: str, size: int | None = None, **kwargs) -> nn.Module:
    """A model in eval mode with random BN statistics and a head rescaled so its logits reach about +-10.

    With freshly initialised weights most logits are near zero, and a 1e-4 tolerance would pass anything.
    """
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, **kwargs)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.uniform_(module.weight, 0.5, 1.5)
            nn.init.normal_(module.bias, 0.0, 0.1)
            nn.init.normal_(module.running_mean, 0.0, 0.1)
            nn.init.uniform_(module.running_var, 0.5, 1.5)
    model.eval()
    size = size or export_size(name)
    head = model.get_classifier()
    with torch.no_grad():
        scale = 10 / model(torch.randn(2, model.in_chans, size, size)).abs().max()
        head.weight.mul_(scale)
        if head.bias is not None:
            head.bias.mul_(scale)
    return model


def export_size(name: str) -> int:
    """A reduced input the model takes: its minimum, at least 32 px, never above its default."""
    info = cnnzoo.model_info(name)
    return min(info.input_size[1], max(info.min_size, 32))


def _params(name: str) -> int:
    info = cnnzoo.model_info(name)
    return info.params or int(info.params_approx or 0)


def _registry_params():
    return [pytest.param(n, marks=pytest.mark.slow) if _params(n) > BIG or n in DEEP else n for n in cnnzoo.list_models()]


@pytest.mark.parametrize("name", _registry_params())
def test_every_model_exports_to_onnx_and_matches_eager(name):
    model = scrambled(name)
    shape = (model.in_chans, export_size(name), export_size(name))
    if name in REFUSED:
        with pytest.raises(ExportError, match=REFUSED[name]):
            onnx_bytes(model, torch.randn(2, *shape))
        return
    data, _ = onnx_bytes(model, torch.randn(2, *shape))  # what export_onnx writes, kept off the disk
    run = load_exported(data)  # onnx.checker, then an ONNX Runtime session
    diff, scale = verify(model, run, shape, batch=3)  # another batch size than the export's 2
    assert scale > 5 and diff < 1e-4 * scale


def test_torchscript_and_exported_program(tmp_path):
    model = scrambled("googlenet", size=32)  # ceil_mode pooling, auxiliary heads left out in eval form
    example = torch.randn(2, 3, 32, 32)
    export_torchscript(model, example, tmp_path / "g.pt")
    export_program(model, example, tmp_path / "g.pt2")
    for path, fmt in ((tmp_path / "g.pt", "torchscript"), (tmp_path / "g.pt2", "exported-program")):
        diff, scale = verify(model, load_exported(path, fmt), (3, 32, 32), batch=5)
        assert scale > 5 and diff < 1e-4 * scale


def test_verify_catches_a_wrong_export():
    model = scrambled("lenet5")
    with pytest.raises(ExportError, match="differs from eager PyTorch by"):
        verify(model, lambda x: model(x) + 0.01, (1, 32, 32))
    with pytest.raises(ExportError, match=r"gives shape \(2, 10\) for a batch of 3"):
        verify(model, lambda x: model(x[:2]), (1, 32, 32))


def test_cli_export_onnx(tmp_path, capsys):
    model = scrambled("lenet5")
    weights = tmp_path / "lenet5.safetensors"
    model.save(weights)
    out = tmp_path / "l.onnx"
    assert main(["export", "lenet5", "--weights", str(weights), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"lenet5 ({weights}) -> {out}: onnx" in text and "input N x 1 x 32 x 32 (dynamic batch)" in text
    assert "verified: onnx.checker passed; ONNX Runtime" in text and "on a batch of 3: max abs diff" in text
    run = load_exported(out)
    x = torch.randn(7, 1, 32, 32)
    assert (run(x) - model(x)).abs().max() < 1e-4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["l.onnx", "lenet5.safetensors"]  # no temporary left


def test_cli_export_fixed_batch_and_torchscript(tmp_path, capsys):
    out = tmp_path / "m.pt"
    with pytest.warns(UserWarning, match="no pretrained weights and no --weights was given: exporting its random"):
        assert main(["export", "mobilenet_v2_cifar", "--format", "torchscript", "--no-dynamic-batch", "--batch", "4",
                     "--input", "3x40x40", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "input N x 3 x 40 x 40 (batch fixed at 4)" in text and "on a batch of 4" in text
    assert torch.jit.load(str(out))(torch.randn(4, 3, 40, 40)).shape == (4, 10)


@pytest.mark.parametrize("args,message", [
    (["--format", "tflite"], "argument --format: invalid choice: 'tflite'"),
    (["--input", "3x"], "argument --input: '3x' is not CxHxW"),
    (["--input", "3x32x32"], "--input 3x32x32 has 3 channels but the model takes 1; give 1x32x32"),
    (["--input", "28"], "lenet5 needs inputs of at least 32x32 pixels, got 28x28"),
    (["--weights", "nosuch"], "pretrained weights"),
])
def test_cli_export_errors_are_one_line(args, message, tmp_path, capsys):
    out = tmp_path / "x.onnx"
    assert _exit_code(["export", "lenet5", *args, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def _exit_code(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own errors
        return int(exc.code)


def test_cli_export_writes_nothing_when_verification_fails(tmp_path, capsys, monkeypatch):
    import cnnzoo.runtime.export as ex

    monkeypatch.setattr(ex, "verify", lambda *a, **k: (_ for _ in ()).throw(ExportError("differs by 1; not written")))
    out = tmp_path / "l.onnx"
    assert main(["export", "lenet5", "--out", str(out)]) == 2
    assert "differs by 1; not written" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []

