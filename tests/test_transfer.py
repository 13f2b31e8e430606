"""Transfer learning: head swaps on every model, strategies, frozen BN, discriminative rates, the 2x2 rule,
features, grayscale weights, resume across unfreezing, the logistic-regression solver, the study, errors."""

from __future__ import annotations

import csv
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import cnnzoo
from cnnzoo.cli import build_parser, main
from cnnzoo.errors import CnnzooError
from cnnzoo.training.augment import BatchPipeline
from cnnzoo.training.checkpoint import load_checkpoint
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.features import extract_features
from cnnzoo.training.fit import fit, load_pretrained, prepare_data
from cnnzoo.training.trainer import build_optimizer
from cnnzoo.training.transfer import choose_strategy, parameter_groups, set_frozen, trainable_groups
from conftest import small_size
from datagen import write_idx_dataset

quiet = dict(log=lambda *a, **k: None)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), n_train=240, n_test=60)


def cfg_for(root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="lenet5", data="mnist", data_root=str(root), epochs=1, batch_size=40, lr=0.05, val_size=40,
                schedule="constant", augment=("flip",), out=str(out), progress=False)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def lenet_weights(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lenet")
    fit(cfg_for(tiny, out, epochs=2, model_kwargs={"act": "relu", "pool": "max"}), **quiet)
    return out / "best.pt"


@pytest.fixture(scope="module")
def resnet_weights(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("resnet")
    fit(cfg_for(tiny, out, model="resnet20_cifar", limit_per_class=8, image_size=16), **quiet)
    return out / "best.pt"


def heads(model) -> tuple[str, ...]:
    return tuple(n + "." for n in (model.classifier_name, *model.aux_classifier_names))


# ------------------------------------------------------------------------------------ the contract, every model

@pytest.mark.parametrize("name", cnnzoo.list_models())
def test_every_model_splits_into_stages_and_swaps_only_its_head(name):
    info = cnnzoo.model_info(name)
    with torch.device("meta"):  # bookkeeping and shapes only: no memory, no arithmetic
        model = cnnzoo.create_model(name)
    groups = parameter_groups(model)
    assert sorted(id(p) for g in groups for p in g.params) == sorted(id(p) for p in model.parameters())
    stages = [g.name for g in groups if g.name.startswith("stage")]
    assert stages == [f"stage{i}" for i in range(len(model.feature_info))]
    assert len(model.feature_info) >= 2  # auto's top:2 exists everywhere
    head_params = {id(p) for n in (model.classifier_name, *model.aux_classifier_names)
                   for p in model.get_submodule(n).parameters()}
    assert groups[-1].name == "classifier" and {id(p) for p in groups[-1].params} == head_params

    before = dict(model.named_parameters())
    model.reset_classifier(7)
    after = dict(model.named_parameters())
    outside = [k for k in before if not k.startswith(heads(model))]
    assert [k for k in after if not k.startswith(heads(model))] == outside
    assert all(after[k] is before[k] for k in outside)
    assert all(after[k] is not before.get(k) for k in after if k.startswith(heads(model)))
    assert model.num_classes == 7 and model.model_args["num_classes"] == 7
    s = small_size(name)
    assert model.eval()(torch.empty(2, info.input_size[0], s, s, device="meta")).shape == (2, 7)


@pytest.mark.parametrize("name", ["lenet5", "resnet20_cifar", "vgg11_bn_cifar", "squeezenet1_1"])
def test_head_swap_keeps_every_other_value(name):
    model = cnnzoo.create_model(name).eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    model.reset_classifier(3)
    new = model.state_dict()
    assert set(new) == set(state)
    assert all(torch.equal(new[k], state[k]) for k in state if not k.startswith(heads(model)))
    assert all(new[k].shape[0] == 3 for k in new if k.startswith(heads(model)))
    s = max(cnnzoo.model_info(name).min_size, 8)
    assert model(torch.randn(2, model.in_chans, s, s)).shape == (2, 3)


# ------------------------------------------------------------------------------------------------- strategies

def trained_names(model, groups, strategy: str) -> set[str]:
    set_frozen(groups, trainable_groups(groups, strategy))
    return {n for n, p in model.named_parameters() if p.requires_grad}


def test_each_strategy_trains_exactly_its_groups():
    model = cnnzoo.create_model("resnet20_cifar")
    groups = parameter_groups(model)
    every = {n for n, _ in model.named_parameters()}
    assert trained_names(model, groups, "linear") == {"fc.weight", "fc.bias"}
    assert trained_names(model, groups, "top:1") == {n for n in every if n.startswith(("layer3.", "fc."))}
    assert trained_names(model, groups, "top:2") == {n for n in every if n.startswith(("layer2.", "layer3.", "fc."))}
    assert trained_names(model, groups, "full") == every
    set_frozen(groups, trainable_groups(groups, "top:1"))
    model.train()
    assert not model.bn1.training and not model.layer2[0].bn1.training and model.layer3[0].bn1.training
    set_frozen(groups, trainable_groups(groups, "linear"), bn_mode="train")
    model.train()
    assert model.bn1.training and model.layer2[0].bn1.training

    vgg = cnnzoo.create_model("vgg11_cifar")  # a head between the last stage and the classifier: FC6, FC7
    top1 = trained_names(vgg, parameter_groups(vgg), "top:1")
    assert top1 == {f"{m}.{p}" for m in ("features.16", "features.18", "classifier.0", "classifier.3", "classifier.6")
                    for p in ("weight", "bias")}
    with pytest.raises(CnnzooError, match="top:6 asks for more stages than the model's 5"):
        trainable_groups(parameter_groups(vgg), "top:6")


def test_discriminative_rates_are_geometric_from_lr_over_spread_to_lr():
    model = cnnzoo.create_model("resnet20_cifar")
    groups = parameter_groups(model)
    opt = build_optimizer(TrainConfig(strategy="full", lr=0.1, lr_spread=10.0), model, groups)
    assert [g["name"] for g in opt.param_groups] == ["stage0", "stage1", "stage2", "stage3", "classifier"]
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01 * 10 ** (i / 4) for i in range(5)])
    opt = build_optimizer(TrainConfig(strategy="top:1", lr=0.1, lr_spread=10.0), model, groups)
    assert [(g["name"], g["lr"]) for g in opt.param_groups] == [("stage3", 0.1), ("classifier", 0.1)]


def test_the_2x2_rule():
    assert choose_strategy(10, similar=True)[0] == "linear"
    assert choose_strategy(1000, similar=True)[0] == "top:1"
    assert choose_strategy(1000, similar=False)[0] == "full"
    assert choose_strategy(10, similar=False)[0] == "linear"  # measured: see choose_strategy
    assert choose_strategy(199, True)[0] == "linear" and choose_strategy(200, True)[0] == "top:1"
    assert choose_strategy(10, False)[1].startswith("different data, small dataset (10 images per class")


def test_finetune_defaults_and_similarity_flags(tiny):
    from cnnzoo.commands.finetune import finetune_config

    base = ["finetune", "lenet5", "--weights", "w.pt", "--data", "mnist"]
    cfg = finetune_config(build_parser().parse_args(base))
    assert (cfg.strategy, cfg.lr, cfg.epochs, cfg.schedule, cfg.head_epochs) == ("auto", 0.01, 5, "cosine", 1)
    assert cfg.similar is None
    assert cfg.out is None  # the run picks a new runs/lenet5-mnist-finetune[-N] when it starts
    assert finetune_config(build_parser().parse_args([*base, "--different", "--lr", "0.003"])).similar is False
    assert finetune_config(build_parser().parse_args([*base, "--similar"])).similar is True


def test_auto_prints_its_cell_and_reason(tiny, lenet_weights, tmp_path, capsys):
    common = ["finetune", "lenet5", "--weights", str(lenet_weights), "--data", "mnist", "--data-root", str(tiny),
              "--epochs", "1", "--batch-size", "40", "--augment", "flip", "--no-progress"]
    assert main([*common, "--similar", "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "auto strategy: linear — similar data, small dataset (24 images per class; small is < 200): " \
           "retrain only the classifier (similarity stated)" in out
    assert json.loads((tmp_path / "a" / "report.json").read_text())["config"]["strategy"] == "linear"
    assert main([*common, "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "(similarity measured: the pretrained classifier's mean confidence on the new images is" in out


# --------------------------------------------------------------------------------------------- training runs

def test_frozen_stages_and_their_bn_statistics_stay_bit_identical(tiny, resnet_weights, tmp_path):
    pre = load_checkpoint(resnet_weights)["model"]
    common = dict(model="resnet20_cifar", weights=str(resnet_weights), limit_per_class=8, classes=(0, 1, 2, 3))
    fit(cfg_for(tiny, tmp_path / "linear", strategy="linear", **common), **quiet)
    after = load_checkpoint(tmp_path / "linear" / "last.pt")["model"]
    assert after.keys() == pre.keys()
    assert all(torch.equal(after[k], pre[k]) for k in pre if not k.startswith("fc."))
    assert after["fc.weight"].shape == (4, 64)

    fit(cfg_for(tiny, tmp_path / "top1", strategy="top:1", **common), **quiet)
    after = load_checkpoint(tmp_path / "top1" / "last.pt")["model"]
    assert all(torch.equal(after[k], pre[k]) for k in pre if not k.startswith(("layer3.", "fc.")))
    assert not torch.equal(after["layer3.0.bn1.running_mean"], pre["layer3.0.bn1.running_mean"])
    assert not torch.equal(after["layer3.0.conv1.weight"], pre["layer3.0.conv1.weight"])


def test_resume_across_unfreezing_equals_an_uninterrupted_run(tiny, resnet_weights, tmp_path):
    common = dict(model="resnet20_cifar", weights=str(resnet_weights), strategy="full", head_epochs=1,
                  limit_per_class=8)
    pre = load_checkpoint(resnet_weights)["model"]
    fit(cfg_for(tiny, tmp_path / "whole", epochs=2, **common), **quiet)
    fit(cfg_for(tiny, tmp_path / "cut", epochs=1, **common), **quiet)
    warm = load_checkpoint(tmp_path / "cut" / "last.pt")["model"]
    assert all(torch.equal(warm[k], pre[k]) for k in pre if not k.startswith("fc."))  # the warm-up froze them
    fit(cfg_for(tiny, tmp_path / "cut", epochs=2, **common), resume=True, **quiet)
    whole, resumed = (load_checkpoint(tmp_path / d / "last.pt")["model"] for d in ("whole", "cut"))
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert not torch.equal(whole["conv1.weight"], pre["conv1.weight"])  # and then everything trained


def test_resume_of_a_finished_run_on_cached_features_returns_its_report(tiny, resnet_weights, tmp_path):
    cfg = cfg_for(tiny, tmp_path / "ft", model="resnet20_cifar", weights=str(resnet_weights), strategy="linear",
                  augment=(), limit_per_class=8, steps=20)
    first = fit(cfg, **quiet)
    assert first["cached_features"] and not (tmp_path / "ft" / "last.pt").exists()
    lines: list[str] = []
    again = fit(cfg, resume=True, log=lines.append)
    assert again["test_top1"] == first["test_top1"]
    assert lines[0].startswith("nothing to resume: the run in") and "trained on cached features" in lines[0]
    with pytest.raises(CnnzooError, match="cached features keeps none while it trains"):
        fit(cfg_for(tiny, tmp_path / "never", model="resnet20_cifar", weights=str(resnet_weights),
                    strategy="linear", augment=()), resume=True, **quiet)


def test_auto_engine_stays_eager_for_few_images(tiny, resnet_weights, tmp_path):
    lines: list[str] = []
    fit(cfg_for(tiny, tmp_path / "few", model="resnet20_cifar", weights=str(resnet_weights), strategy="linear",
                augment=(), limit_per_class=8, steps=10, engine="auto"), log=lines.append)
    assert any(line.startswith("engine auto: eager for ") and "below 500" in line for line in lines)


def test_grayscale_weights_from_rgb_sum_the_first_filters(tmp_path):
    rgb = cnnzoo.create_model("resnet20_cifar").eval()
    rgb.save(tmp_path / "rgb.safetensors")
    gray = cnnzoo.create_model("resnet20_cifar", in_chans=1, weights=str(tmp_path / "rgb.safetensors")).eval()
    assert torch.equal(gray.conv1.weight, rgb.conv1.weight.sum(dim=1, keepdim=True))
    x = torch.rand(2, 1, 16, 16)
    with torch.no_grad():
        assert torch.allclose(gray(x), rgb(x.expand(-1, 3, -1, -1)), atol=1e-5)


# ------------------------------------------------------------------------------------------------- features

def test_feature_widths_per_layer():
    images = torch.randint(0, 256, (5, 1, 28, 28), dtype=torch.uint8)
    pipeline = BatchPipeline((0.5,), (0.25,))
    model = cnnzoo.create_model("resnet20_cifar", in_chans=1)
    assert extract_features(model, images, pipeline, "pre_logits").shape == (5, model.num_features)
    assert extract_features(model, images, pipeline, "features").shape == (5, model.num_features)
    for f in model.feature_info:
        assert extract_features(model, images, pipeline, f.module).shape == (5, f.num_chs)
    with pytest.raises(CnnzooError, match=r"no layer 'layer4' \(did you mean layer3, layer2, layer1\?\).*relu, "
                                          r"layer1, layer2, layer3"):
        extract_features(model, images, pipeline, "layer4")

    vgg = cnnzoo.create_model("vgg11_cifar", in_chans=1)  # FC7 by name is the pre-logit vector
    fc7 = extract_features(vgg, images, pipeline, "classifier.4")
    assert fc7.shape == (5, 512) and torch.equal(fc7, extract_features(vgg, images, pipeline, "pre_logits"))


def test_features_command_writes_labels_and_the_asked_split(tiny, lenet_weights, tmp_path, capsys):
    out = tmp_path / "f.npz"
    argv = ["features", "lenet5", "--weights", str(lenet_weights), "--data", "mnist", "--data-root", str(tiny),
            "--layer", "pool2", "--split", "test", "--out", str(out)]
    assert main(argv) == 0
    saved = np.load(out)
    assert sorted(saved.files) == ["classes", "test_features", "test_labels"]
    assert saved["test_features"].shape == (60, 16) and saved["test_labels"].shape == (60,)
    assert np.array_equal(saved["test_labels"], prepare_data(cfg_for(tiny, tmp_path)).test_labels.numpy())
    assert [p.name for p in tmp_path.iterdir()] == ["f.npz"]  # no temporary file left
    assert main([*argv[:-4], "--layer", "pool9"]) == 2
    err = capsys.readouterr().err
    assert "lenet5 has no layer 'pool9'" in err and "pool1, pool2, act3" in err and err.count("\n") == 1


# ---------------------------------------------------------------------------------------- logistic regression

@pytest.mark.parametrize("classes", [(), (2, 7)])
def test_logreg_probe_and_its_folded_checkpoint_agree(tiny, lenet_weights, tmp_path, classes):
    pytest.importorskip("sklearn")
    from cnnzoo.training.evaluate import load_trained
    from cnnzoo.training.linear_probe import linear_probe
    from cnnzoo.training.trainer import metrics_from_probs, predict

    cfg = cfg_for(tiny, tmp_path / "probe", weights=str(lenet_weights), strategy="linear", classes=classes)
    data = prepare_data(cfg)
    report = linear_probe(cfg, **quiet)
    assert report["num_features"] == 84 and report["train_images"] == len(data.train_labels)
    assert report["test_top1"] >= 0.9  # the pretrained codes separate the generated patterns
    model, ckpt = load_trained(tmp_path / "probe" / "best.pt", torch.device("cpu"))
    assert model.num_classes == (len(classes) or 10)
    p = ckpt["pipeline"]
    assert (p["size"], p["fit"]) == (32, "pad")  # the padding the weights were trained with
    probs = predict(model, data.test_images, BatchPipeline(tuple(p["mean"]), tuple(p["std"]), p["size"], p["fit"]))
    assert metrics_from_probs(probs, data.test_labels, data.num_classes)["top1"] == report["test_top1"]


def test_logreg_without_scikit_learn_says_what_to_install(tiny, lenet_weights, tmp_path, capsys, monkeypatch):
    for name in {"sklearn", "sklearn.linear_model", *(m for m in sys.modules if m.startswith("sklearn."))}:
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed, even after an earlier import
    argv = ["finetune", "lenet5", "--weights", str(lenet_weights), "--data", "mnist", "--data-root", str(tiny),
            "--solver", "logreg", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err == "cnnzoo: error: --solver logreg needs scikit-learn: pip install scikit-learn\n"
    assert main([*argv, "--strategy", "full"]) == 2
    assert "use it with --strategy linear, not full" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------------- errors

def test_weights_that_do_not_fit_are_one_line_exit_2(tiny, tmp_path, capsys):
    state = cnnzoo.create_model("lenet5").state_dict()
    state["conv2.weight"] = torch.zeros(16, 3, 5, 5)
    torch.save(state, tmp_path / "bad.pth")
    argv = ["finetune", "lenet5", "--weights", str(tmp_path / "bad.pth"), "--data", "mnist", "--data-root", str(tiny),
            "--out", str(tmp_path / "run")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == ("cnnzoo: error: these weights do not fit lenet5: 1 shape mismatches (conv2.weight (16, 3, 5, 5) "
                   "vs (16, 6, 5, 5)); check the model name and its arguments\n")
    assert main([*argv[:2], "--data", "mnist"]) == 2
    assert "finetune needs --weights" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------------- study

def test_transfer_study_writes_its_table_and_resumes(tiny, lenet_weights, tmp_path, capsys, monkeypatch):
    out = tmp_path / "study"
    argv = ["transfer-study", "lenet5", "--weights", str(lenet_weights), "--data", "mnist", "--data-root", str(tiny),
            "--per-class", "6,3", "--strategies", "scratch,linear", "--epochs", "1", "--batch-size", "40",
            "--augment", "flip", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    rows = list(csv.DictReader((out / "study.csv").open()))
    assert [(r["strategy"], r["per_class"]) for r in rows] == [("scratch", "3"), ("linear", "3"), ("scratch", "6"),
                                                                ("linear", "6")]
    assert (out / "study.md").read_text().splitlines()[0] == "| strategy | per class | test accuracy | time (s) |"
    assert (out / "study.png").stat().st_size > 0
    for r in rows:
        report = json.loads((out / f"{r['strategy']}-{r['per_class']}" / "report.json").read_text())
        assert (report["config"]["epochs"], report["config"]["batch_size"]) == (1, 40)
        assert float(r["test_top1"]) == report["test_top1"]
    capsys.readouterr()

    import cnnzoo.training.fit as fit_module

    monkeypatch.setattr(fit_module, "fit", lambda *a, **k: pytest.fail("a finished run was repeated"))
    assert main(argv) == 0
    assert capsys.readouterr().out.count("done before") == 4
    assert list(csv.DictReader((out / "study.csv").open())) == rows


def test_scratch_is_the_same_model_without_the_weights(tiny, lenet_weights, tmp_path):
    data = prepare_data(cfg_for(tiny, tmp_path))
    pre = load_checkpoint(lenet_weights)["model"]["conv1.weight"]
    base = cfg_for(tiny, tmp_path, weights=str(lenet_weights))
    loaded, pipe = load_pretrained(dataclasses.replace(base, strategy="linear"), data)
    scratch, scratch_pipe = load_pretrained(dataclasses.replace(base, strategy="scratch"), data)
    assert torch.equal(loaded.conv1.weight, pre) and not torch.equal(scratch.conv1.weight, pre)
    assert scratch.model_args == loaded.model_args and scratch_pipe == pipe
