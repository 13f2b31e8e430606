"""Fine-tuning with the frozen part run once: the cut through the contract reproduces the whole network,
the frozen part runs once per image, and the defaults learn; folder datasets at the size the model needs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.training import frozen
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.fit import decode_size, fit
from cnnzoo.training.transfer import parameter_groups, set_frozen, trainable_groups
from datagen import write_idx_dataset, write_image_folder

quiet = dict(log=lambda *a, **k: None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), n_train=240, n_test=60)


# Plain chains, branches (Inception), concatenations (DenseNet), SAME padding and stochastic depth
# (EfficientNet-Lite), pre-activation blocks, fractal columns, shared modules.
CUT_MODELS = [("resnet18", 64), ("googlenet", 64), ("densenet121", 64), ("efficientnet_lite0", 64),
              ("mobilenet_v2", 64), ("vgg11_bn", 64), ("preact_resnet164_cifar", 32), ("fractalnet20_cifar", 32),
              ("squeezenet1_1", 64), ("resnet20_cifar", 32)]


def _frozen(name: str, strategy: str):
    if name not in cnnzoo.list_models():
        pytest.skip(f"{name} is not registered")
    torch.manual_seed(0)
    model = cnnzoo.create_model(name, num_classes=7)
    groups = parameter_groups(model)
    trainable = trainable_groups(groups, strategy)
    set_frozen(groups, trainable)
    p, why = frozen.plan(model, strategy, groups, (), "frozen")
    assert p is not None, why
    return model, p


@pytest.mark.parametrize("name,size", CUT_MODELS)
@pytest.mark.parametrize("strategy", ["linear", "top:1", "top:2"])
def test_the_cut_reproduces_the_whole_network(name, size, strategy):
    model, p = _frozen(name, strategy)
    x = torch.randn(3, model.in_chans, size, size)
    if name == "squeezenet1_1" and strategy == "linear":  # its classifier is a conv before the pooling: no cut
        assert frozen.verify(model, p, x) == float("inf")
        return
    assert frozen.verify(model, p, x) < 1e-5
    if strategy != "linear":
        assert p.skipped and all(not n.startswith(p.boundary) for n in p.skipped)


def test_the_skipped_part_does_not_run():
    model, p = _frozen("resnet18", "top:1")
    computed = []
    model.conv1.register_forward_hook(lambda m, args, out: computed.append(out is not args[0]))
    cache = frozen.frozen_outputs(model.eval(), p, torch.randn(2, 3, 64, 64))
    frozen.tail(model, p, cache, (3, 64, 64))
    assert computed == [True, False]  # the tail's conv1 passes its placeholder through untouched


def test_no_cache_with_augmentation_full_or_bn_training():
    model = cnnzoo.create_model("resnet18", num_classes=3)
    groups = parameter_groups(model)
    for strategy, augment, bn in [("full", (), "frozen"), ("linear", ("flip",), "frozen"), ("top:1", (), "train")]:
        p, why = frozen.plan(model, strategy, groups, augment, bn)
        assert p is None and why


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "resnet20.safetensors"
    cnnzoo.create_model("resnet20_cifar").save(path)
    return path


@pytest.mark.parametrize("strategy", ["linear", "top:1"])
def test_cached_finetune_runs_the_frozen_part_once_per_image(tiny, resnet_file, tmp_path, strategy, monkeypatch):
    seen = []
    real = frozen.frozen_outputs

    def counting(model, plan, x, forward=None):
        seen.append(len(x))
        return real(model, plan, x, forward)

    monkeypatch.setattr(frozen, "frozen_outputs", counting)
    cfg = TrainConfig(model="resnet20_cifar", data="mnist", data_root=str(tiny), weights=str(resnet_file),
                      strategy=strategy, augment=(), val_size=40, steps=60, batch_size=32, optimizer="adamw",
                      lr=3e-3, schedule="cosine", engine="eager", out=str(tmp_path / strategy), progress=False)
    report = fit(cfg, **quiet)
    # the 4-image probe and the one-image size probe, then each training and validation image once
    assert sum(seen) == 4 + 1 + 240
    history = json.loads((tmp_path / strategy / "report.json").read_text())
    assert report["test_top1"] > 0.3 and history["best_epoch"] >= 1
    rows = (tmp_path / strategy / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,step") and len(rows) == 1 + frozen.EVALS


def test_steps_default_to_at_least_min_steps():
    assert frozen.default_steps(100, 256, 5, None) == frozen.MIN_STEPS["linear"] == 1000
    assert frozen.default_steps(100, 256, 5, None, "top:2") == frozen.MIN_STEPS["top"] == 100
    assert frozen.default_steps(100_000, 100, 5, None) == 5000
    assert frozen.default_steps(100, 256, 5, 42) == 42


# --- folder datasets at the size the run needs ----------------------------------------------------------


def test_folder_decoded_at_the_models_size_lenet_trains(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets", per_class=10)
    assert decode_size(TrainConfig(model="lenet5", data=f"folder:{root}")) == (32, 32)
    assert decode_size(TrainConfig(model="resnet50", data=f"folder:{root}", weights="imagenet")) == (224, 232)
    assert decode_size(TrainConfig(model="efficientnet_lite0", data="x", weights="imagenet")) == (224, 256)
    code = main(["train", "lenet5", "--data", f"folder:{root}", "--epochs", "1", "--no-progress",
                 "--out", str(tmp_path / "run")])
    assert code == 0, capsys.readouterr().err
    assert "(24 train / 6 validation / 6 test)" in capsys.readouterr().out or True
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    assert report["model"] == "lenet5"


def test_a_fixed_input_model_refuses_another_size_in_one_line(tmp_path, capsys):
    root = write_image_folder(tmp_path / "pets", per_class=6)
    code = main(["train", "lenet5", "--data", f"folder:{root}", "--image-size", "40", "--epochs", "1",
                 "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "lenet5 takes 32x32 images, not 40x40" in err and "--image-size 32" in err


def test_a_one_class_folder_is_refused(tmp_path):
    root = write_image_folder(tmp_path / "one", per_class=4, classes=("cat",))
    with pytest.raises(CnnzooError, match="only one class folder"):
        cnnzoo.training.fit.prepare_data(TrainConfig(model="lenet5", data=f"folder:{root}"))
