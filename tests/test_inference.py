"""The forward-only engines: agreement with eager PyTorch, the export cache, ``auto``'s cached choice, fallbacks."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnzoo
from cnnzoo.runtime import build as inference, cache as engine_cache
from cnnzoo.runtime import ENGINES, EngineError, build_engine

pytest.importorskip("onnxruntime")

from test_export import scrambled  # noqa: E402


# (model, input size): a LeNet, grouped and depthwise convolutions, TF SAME padding, ceil_mode pooling with
# auxiliary heads in eval form, a deep residual net.
AGREE = [("lenet5", 32), ("resnext50_32x4d", 32), ("mobilenet_v2_cifar", 32), ("efficientnet_lite0", 64),
         ("googlenet", 64), ("resnet56_cifar", 32)]


@pytest.mark.parametrize("name,size", AGREE)
def test_onnxruntime_agrees_with_eager(name, size, tmp_path):
    model = scrambled(name, size)
    engine = build_engine(model, (model.in_chans, size, size), engine="onnxruntime", cache_dir=tmp_path)
    assert engine.name == "onnxruntime"
    x = torch.randn(5, model.in_chans, size, size)  # another batch size than the export's
    with torch.no_grad():
        expected = model(x)
    got = engine(x)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    assert expected.abs().max() > 5
    assert (got - expected).abs().max().item() < 1e-4


def test_second_build_does_not_export_again(tmp_path, monkeypatch):
    model = scrambled("lenet5")
    first = build_engine(model, (1, 32, 32), engine="onnxruntime", cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert len(files) == 1 and files[0].startswith("lenet5-") and files[0].endswith(".onnx")

    def no_export(*args, **kwargs):
        raise AssertionError("exported again")

    monkeypatch.setattr(engine_cache, "export_onnx", no_export)
    second = build_engine(model, (1, 32, 32), engine="onnxruntime", cache_dir=tmp_path)
    x = torch.randn(3, 1, 32, 32)
    assert torch.equal(first(x), second(x))
    # other weights are another graph: exported again
    with torch.no_grad():
        model.conv1.weight.add_(0.1)
    with pytest.raises(EngineError, match="exported again"):
        build_engine(model, (1, 32, 32), engine="onnxruntime", cache_dir=tmp_path)


def test_auto_measures_once_and_caches_its_choice(tmp_path, monkeypatch):
    model = scrambled("lenet5")
    lines: list[str] = []
    engine = build_engine(model, (1, 32, 32), batch_size=16, cache_dir=tmp_path, log=lines.append)
    assert engine.name in ("eager", "onnxruntime", "openvino") and engine.precision == "fp32"
    assert len(lines) == 1 and lines[0].startswith(f"engine auto, precision fp32: {engine.name} fp32 (")
    assert "onnxruntime fp32" in lines[0] and "eager fp32" in lines[0] and "img/s" in lines[0]

    def no_measure(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(inference, "measure", no_measure)
    monkeypatch.setattr(engine_cache, "export_onnx", no_measure)
    lines.clear()
    again = build_engine(model, (1, 32, 32), batch_size=16, cache_dir=tmp_path, log=lines.append)
    assert again.name == engine.name and "measured before" in lines[0]


def test_any_batch_size_and_other_shapes(tmp_path):
    model = scrambled("lenet5")
    engine = build_engine(model, (1, 32, 32), engine="onnxruntime", cache_dir=tmp_path)
    for n in (1, 2, 37):
        x = torch.randn(n, 1, 32, 32)
        assert (engine(x) - model(x)).abs().max() < 1e-4
    # a shape it was not built for runs eagerly, with eager's one-line errors
    with pytest.raises(cnnzoo.InputSizeError, match="at least 32x32"):
        engine(torch.randn(2, 1, 28, 28))


def test_a_wrapper_module_and_tuple_outputs(tmp_path):
    model = scrambled("resnet20_cifar")

    class PreLogits(nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m.forward_head(self.m.forward_features(x), pre_logits=True), x.mean()

    wrapper = PreLogits(model)
    engine = build_engine(wrapper, (3, 32, 32), engine="onnxruntime", cache_dir=tmp_path)
    x = torch.randn(3, 3, 32, 32)
    expected = wrapper(x)[0]
    assert engine(x).shape == (3, 64)
    assert (engine(x) - expected).abs().max() < 1e-4


def test_without_onnxruntime(tmp_path, monkeypatch):
    monkeypatch.setattr(inference, "onnx_available", lambda: False)
    model = scrambled("lenet5")
    lines: list[str] = []
    assert build_engine(model, (1, 32, 32), cache_dir=tmp_path, log=lines.append).name == "eager"
    assert "pip install 'cnnzoo[onnx]'" in lines[0]
    with pytest.raises(EngineError, match=r"pip install 'cnnzoo\[onnx\]'"):
        build_engine(model, (1, 32, 32), engine="onnxruntime", cache_dir=tmp_path)


def test_a_failing_engine_falls_back_with_one_warning(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("no exporter takes this\nsecond line")

    monkeypatch.setattr(engine_cache, "export_onnx", broken)
    model = scrambled("lenet5")
    lines: list[str] = []
    with pytest.warns(UserWarning) as caught:
        engine = build_engine(model, (1, 32, 32), cache_dir=tmp_path, log=lines.append)
    assert engine.name == "eager" and engine.precision == "fp32"
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == len(inference.candidates(torch.device("cpu"), "auto", "fp32")) - 1
    assert all("fp32 engine cannot run lenet5: no exporter takes this; trying the next" in m for m in messages)
    assert lines == [lines[0]] and lines[0].startswith("engine auto, precision fp32: eager fp32 (eager fp32 ")


def test_unknown_engine():
    with pytest.raises(EngineError, match="choose one of auto, eager, compile, onnxruntime, openvino"):
        build_engine(nn.Identity(), (1, 2, 2), engine="tensorrt")
    assert ENGINES == ("auto", "eager", "compile", "onnxruntime", "openvino")


def test_cache_home(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    assert engine_cache.cache_home() == tmp_path / "onnx"
    monkeypatch.delenv("CNNZOO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert engine_cache.cache_home() == tmp_path / "xdg" / "cnnzoo" / "onnx"


@pytest.mark.parametrize("layer", ["pre_logits", "features", "layer2", "layer3.0.conv1"])
def test_extract_features_through_an_engine(layer, tmp_path, monkeypatch):
    from cnnzoo.training.augment import BatchPipeline
    from cnnzoo.training.features import extract_features

    monkeypatch.setenv("CNNZOO_CACHE", str(tmp_path))
    model = scrambled("resnet20_cifar")
    images = torch.randint(0, 256, (70, 3, 32, 32), dtype=torch.uint8)
    pipeline = BatchPipeline((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 32)
    expected = extract_features(model, images, pipeline, layer, batch_size=32)
    got = extract_features(model, images, pipeline, layer, batch_size=32, engine="onnxruntime")
    assert got.shape == expected.shape and expected.abs().max() > 0.5
    assert (got - expected).abs().max().item() < 1e-4
    if layer == "layer2":  # the layers after it are not in the exported graph
        (graph,) = tmp_path.glob("onnx/*.onnx")
        assert graph.stat().st_size < 0.4 * sum(p.numel() * 4 for p in model.parameters())


def test_eval_and_predict_through_an_engine(tmp_path, capsys):
    from datagen import write_idx_dataset
    from PIL import Image

    from cnnzoo.cli import main
    from cnnzoo.training.config import TrainConfig
    from cnnzoo.training.evaluate import evaluate_checkpoints
    from cnnzoo.training.fit import fit

    root = write_idx_dataset(tmp_path / "mnist", n_train=120, n_test=60)
    fit(TrainConfig(model="lenet5", data="mnist", data_root=str(root), epochs=1, batch_size=40, val_size=20,
                    schedule="constant", augment=(), out=str(tmp_path / "run"), progress=False), log=lambda *a: None)
    ckpt = tmp_path / "run" / "best.pt"
    eager = evaluate_checkpoints([ckpt, ckpt], tta="flip", engine="eager")
    fast = evaluate_checkpoints([ckpt, ckpt], tta="flip", engine="onnxruntime")
    assert [r["name"] for r in fast] == [str(ckpt), str(ckpt), "ensemble of 2"]
    for a, b in zip(eager, fast):
        assert a["top1"] == b["top1"] and a["confusion"] == b["confusion"] and abs(a["loss"] - b["loss"]) < 1e-5

    weights = tmp_path / "lenet5.safetensors"
    scrambled("lenet5").save(weights)
    for i in range(3):
        Image.fromarray(torch.randint(0, 256, (40, 36), dtype=torch.uint8).numpy()).save(tmp_path / f"{i}.png")
    images = [str(tmp_path / f"{i}.png") for i in range(3)]
    outputs = {}
    for engine in ("eager", "onnxruntime"):
        assert main(["predict", "lenet5", *images, "--weights", str(weights), "--engine", engine,
                     "--batch-size", "2"]) == 0
        outputs[engine] = capsys.readouterr().out
    assert outputs["eager"] == outputs["onnxruntime"] and outputs["eager"].count("  1. ") == 3
