"""Precision, OpenVINO, int8 and ``--amp auto`` (issue 21): agreement with eager fp32, the checks and their
fallbacks, the int8 file in both runtimes, quantize's refusal, the user's mistakes. No timing is asserted."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.runtime import build as build_module
from cnnzoo.runtime import build_engine, candidates, machine
from cnnzoo.runtime import precision as precision_module
from cnnzoo.runtime.build import GatedEngine
from cnnzoo.runtime.engines import Engine, EngineError
from cnnzoo.runtime.precision import agreement

pytest.importorskip("onnxruntime")

from datagen import write_idx_dataset  # noqa: E402
from test_export import scrambled  # noqa: E402

CPU = torch.device("cpu")
HAVE_OPENVINO = build_module.openvino_ok()


def test_machine_line_names_the_units_and_libraries():
    line = machine().line()
    for word in ("AMX", "AVX512-BF16", "VNNI", "AVX2", "torch ISA", "thread", "torch "):
        assert word in line
    assert ("bf16" in precision_module.native(CPU)) == machine().cpu_bf16


@pytest.mark.skipif(not HAVE_OPENVINO, reason="openvino is not installed")
@pytest.mark.parametrize("name,size", [("lenet5", 32), ("mobilenet_v2_cifar", 32), ("googlenet", 64)])
def test_openvino_fp32_agrees_with_eager(name, size, tmp_path):
    model = scrambled(name, size)
    engine = build_engine(model, (model.in_chans, size, size), engine="openvino", precision="fp32", cache_dir=tmp_path)
    assert engine.label == "openvino fp32"
    x = torch.randn(5, model.in_chans, size, size)
    with torch.no_grad():
        expected = model(x)
    got = engine(x)
    assert got.shape == expected.shape and expected.abs().max() > 5
    assert (got - expected).abs().max().item() < 1e-4 * max(1.0, expected.abs().max().item())


def test_bf16_engines_pass_their_check_against_fp32(tmp_path):
    model = scrambled("resnet20_cifar")
    lines: list[str] = []
    engines = [e for e in ("eager", "openvino") if e == "eager" or HAVE_OPENVINO]
    for name in engines:
        engine = build_engine(model, (3, 32, 32), engine=name, precision="bf16", cache_dir=tmp_path, log=lines.append)
        x = torch.randn(16, 3, 32, 32)
        with torch.no_grad():
            expected = model(x)
        got = engine(x)
        assert isinstance(engine, GatedEngine) and engine.precision == "bf16" and engine.checked.ok
        assert agreement("bf16", got, expected).ok
    assert [line.split(" checked")[0] for line in lines] == [f"{e} bf16" for e in engines]
    assert all("checked against fp32 on the first batch: top-1 agrees on" in line for line in lines)


class Broken(Engine):
    """A lower-precision engine that answers noise."""

    name = "eager"

    def _run(self, x):
        return torch.randn(x.shape[0], 10)


def test_a_lower_precision_that_fails_its_check_falls_back_to_fp32():
    model = scrambled("lenet5")
    lines: list[str] = []
    fp32 = build_engine(model, (1, 32, 32), engine="eager", precision="fp32")
    gated = GatedEngine(Broken(model, (1, 32, 32), "bf16"), model, lines.append, lambda: fp32)
    x = torch.randn(8, 1, 32, 32)
    with torch.no_grad():
        expected = model(x)
    assert torch.equal(gated(x), expected) and gated.label == "eager fp32"
    assert len(lines) == 1 and lines[0].startswith("bf16 failed its check against fp32 on the first batch (top-1")
    assert lines[0].endswith("running eager fp32 instead")
    assert torch.equal(gated(x), expected)  # and it stays fp32


def test_auto_measures_precisions_where_native_and_only_fp32_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setattr(precision_module, "native", lambda device: ())
    monkeypatch.setattr(build_module, "native", lambda device: ())
    assert {c.precision for c in candidates(CPU, "auto", "auto")} == {"fp32"}
    monkeypatch.setattr(build_module, "native", lambda device: ("bf16",))
    found = [str(c) for c in candidates(CPU, "auto", "auto")]
    assert "eager bf16" in found and "eager fp32" in found and "onnxruntime bf16" not in found
    assert ("openvino bf16" in found) == HAVE_OPENVINO
    model = scrambled("lenet5")
    lines: list[str] = []
    engine = build_engine(model, (1, 32, 32), precision="auto", batch_size=8, cache_dir=tmp_path, log=lines.append)
    assert lines[0].startswith(f"engine auto, precision auto: {engine.name} ")
    assert "eager bf16" in lines[0] and "onnxruntime fp32" in lines[0]
    with pytest.raises(EngineError, match="--engine onnxruntime cannot run --precision bf16; it runs fp32"):
        candidates(CPU, "onnxruntime", "bf16")


def test_precision_mistakes_are_one_line(tmp_path):
    model = scrambled("lenet5")
    with pytest.raises(EngineError, match="cnnzoo quantize"):
        build_engine(model, (1, 32, 32), precision="int8", cache_dir=tmp_path)
    with pytest.raises(precision_module.PrecisionError, match="unknown precision"):
        build_engine(model, (1, 32, 32), precision="fp64", cache_dir=tmp_path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A LeNet-5 trained for two epochs on generated IDX data: its run folder."""
    from cnnzoo.training.config import TrainConfig
    from cnnzoo.training.fit import fit

    root = write_idx_dataset(tmp_path_factory.mktemp("mnist"), n_train=400, n_test=200)
    out = tmp_path_factory.mktemp("run") / "lenet"
    fit(TrainConfig(model="lenet5", data="mnist", data_root=str(root), epochs=2, batch_size=40, lr=0.05, val_size=40,
                    schedule="constant", out=str(out), progress=False, amp="off"), log=lambda *a, **k: None)
    return out


def test_quantize_writes_an_int8_file_that_both_runtimes_run(trained, tmp_path, capsys):
    from cnnzoo.runtime.quantize import load_quantized

    out = tmp_path / "lenet-int8.onnx"
    assert main(["quantize", str(trained / "best.pt"), "--calibration", "64", "--max-drop", "100",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "top-1 on 200 held-out images of mnist: fp32 0." in printed and "int8 0." in printed and str(out) in printed
    q = load_quantized(out)
    assert q.meta["model_name"] == "lenet5" and q.input_shape == (1, 32, 32) and q.num_classes == 10
    assert q.meta["calibration_images"] == 64 and (q.meta["reduce_range"] is False or not machine().vnni)
    import onnx

    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    x = torch.randn(6, 1, 32, 32)
    outputs = {}
    for name in ["onnxruntime"] + (["openvino"] if HAVE_OPENVINO else []):
        engine = build_engine(q, engine=name, precision="int8", cache_dir=tmp_path)
        assert engine.label == f"{name} int8"
        outputs[name] = engine(x)
        assert outputs[name].shape == (6, 10)
    if HAVE_OPENVINO:
        assert agreement("int8", outputs["openvino"], outputs["onnxruntime"]).rel_error < 0.05
    features = build_engine(q.features(), engine="onnxruntime", precision="int8", cache_dir=tmp_path)(x)
    assert features.shape == (6, 84)
    with pytest.raises(EngineError, match="runs at --precision int8"):
        build_engine(q, precision="fp32", cache_dir=tmp_path)
    with pytest.raises(EngineError, match="onnxruntime or openvino, not eager"):
        build_engine(q, engine="eager", precision="int8", cache_dir=tmp_path)
    # predict resizes a photo to the graph's own input, with the training normalisation
    from PIL import Image

    Image.new("L", (28, 28), 90).save(tmp_path / "photo.png")
    assert q.meta["preprocessing"]["crop"] == 32 and q.meta["preprocessing"]["mean"] == q.meta["pipeline"]["mean"]
    assert main(["predict", str(out), str(tmp_path / "photo.png"), "--topk", "2"]) == 0
    assert capsys.readouterr().out.startswith(str(tmp_path / "photo.png"))
    assert main(["benchmark", str(out), "--precision", "int8", "--engine", "onnxruntime", "--batch-sizes", "2",
                 "--time-budget", "0.05", "--format", "csv"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row.startswith(f"{out},1x32x32,32,2,onnxruntime,onnxruntime,") and ",int8,int8," in row
    # eval takes the file as a checkpoint, and agrees with the fp32 checkpoint's figure it recorded
    assert main(["eval", str(out), "--data-root", q.meta["config"]["data_root"]]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith(str(out)) and f"top-1 {q.meta['int8_top1']:.4f}" in line


def test_quantize_refuses_a_drop_above_max_drop_and_writes_nothing(trained, tmp_path, capsys):
    out = tmp_path / "never.onnx"
    assert main(["quantize", str(trained / "best.pt"), "--calibration", "32", "--max-drop", "-100",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert all(line.startswith(("calibrating on 32 images", "no VNNI here")) for line in err[:-1])
    assert err[-1].startswith("cnnzoo: error: top-1 on 200") and "above --max-drop -100, so nothing was written" in err[-1]
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv,message", [
    (["quantize", "lenet5", "--out", "x.onnx"], "quantize needs a trained model"),
    (["quantize", "missing/best.pt", "--out", "x.onnx"], "no such file"),
    (["quantize", "best.pt", "--out", "x.pt"], "give a name ending in .onnx"),
    (["train", "model.onnx"], "runs forward only"),
    (["predict", "lenet5", "img.png", "--precision", "int8", "--weights", "w.pt"], None),
])
def test_int8_mistakes_are_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if argv[0] == "train":  # an ONNX file the user has (a missing one is "no such file", as any path)
        (tmp_path / "model.onnx").write_bytes(b"onnx")
    if argv[0] == "predict":
        torch.save({}, "w.pt")
        message = "w.pt"  # a file that is no model says so first; int8 with a real model is tested below
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("cnnzoo: error:") and err.count("\n") == 1 and message in err, err


def test_predict_int8_with_a_model_says_to_quantize(trained, capsys, tmp_path):
    from PIL import Image

    Image.new("L", (28, 28), 40).save(tmp_path / "a.png")
    assert main(["predict", str(trained / "best.pt"), str(tmp_path / "a.png"), "--precision", "int8"]) == 2
    assert "cnnzoo quantize" in capsys.readouterr().err


def test_amp_auto_measures_on_bf16_cpus_and_is_off_elsewhere(monkeypatch, tmp_path):
    from cnnzoo.training import amp
    from cnnzoo.training.config import TrainConfig

    model = scrambled("lenet5")
    cfg = TrainConfig(model="lenet5", batch_size=16)
    lines: list[str] = []
    monkeypatch.setattr(amp, "_cpu_bf16", lambda: False)
    off = amp.resolve_amp(cfg, model, (1, 32, 32), CPU, lines.append, tmp_path)
    assert (off.amp, off.channels_last, lines) == ("off", False, [])
    monkeypatch.setattr(amp, "_cpu_bf16", lambda: True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    chosen = amp.resolve_amp(cfg, model, (1, 32, 32), CPU, lines.append, tmp_path)
    assert (chosen.amp, chosen.channels_last) in (("off", False), ("bf16", True))
    assert lines[0].startswith("amp auto: ") and "fp32" in lines[0] and "bf16 + channels_last" in lines[0]
    assert len(lines[0]) <= 100 and "img/s against" in lines[0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # measured on a copy
    again = amp.resolve_amp(cfg, model, (1, 32, 32), CPU, lines.append, tmp_path)
    assert (again.amp, again.channels_last) == (chosen.amp, chosen.channels_last) and "cached" in lines[1]
    several = amp.resolve_amp(cfg, model, (1, 32, 32), CPU, lines.append, tmp_path, world=2)
    assert (several.amp, several.channels_last) == ("off", False)  # each process would measure for itself
    explicit = TrainConfig(model="lenet5", amp="off", channels_last=False)
    assert amp.resolve_amp(explicit, model, (1, 32, 32), CPU, lines.append, tmp_path) is explicit


def test_without_vnni_both_weight_widths_are_measured_and_the_better_kept(trained, tmp_path, monkeypatch):
    import dataclasses

    from cnnzoo.runtime import quantize as quantize_module
    from cnnzoo.runtime.quantize import load_quantized

    no_vnni = dataclasses.replace(machine(), vnni=False)
    monkeypatch.setattr(quantize_module, "machine", lambda: no_vnni)
    lines: list[str] = []
    monkeypatch.setattr("cnnzoo.runtime.build.to_stderr", lines.append)
    out = tmp_path / "q.onnx"
    assert main(["quantize", str(trained / "best.pt"), "--calibration", "32", "--max-drop", "100",
                 "--out", str(out)]) == 0
    assert [line.split(" (")[0] for line in lines[:2]] == ["calibrating on 32 images"] * 2
    assert "7-bit" in lines[0] and "8-bit" in lines[1]
    assert lines[2].startswith("no VNNI here: int8 top-1 7-bit weights 0.") and "8-bit weights 0." in lines[2]
    meta = load_quantized(out).meta
    widths = dict(part.split(" weights ") for part in lines[2].split("int8 top-1 ", 1)[1].split(", "))
    best = max(widths, key=lambda w: float(widths[w]))
    assert meta["reduce_range"] == (best == "7-bit") and f"{meta['int8_top1']:.4f}" == widths[best]


def test_without_openvino_the_engine_names_the_extra_and_auto_does_without(monkeypatch, tmp_path, capsys):
    from cnnzoo.runtime.engines import openvino

    monkeypatch.setattr(openvino, "available", lambda: False)
    model = scrambled("lenet5")
    with pytest.raises(EngineError, match=r"the openvino engine needs openvino; pip install 'cnnzoo\[openvino\]'"):
        build_engine(model, (1, 32, 32), engine="openvino", cache_dir=tmp_path)
    assert all(c.engine != "openvino" for c in candidates(CPU, "auto", "auto"))
    assert main(["benchmark", "lenet5", "--engine", "openvino", "--batch-sizes", "1"]) == 2
    assert "cnnzoo[openvino]" in capsys.readouterr().err
