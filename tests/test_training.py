"""The trainer: recipes, determinism, exact resume after kill -9, NaN handling, atomic checkpoints, DDP, eval."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.errors import CnnzooError
from cnnzoo.training import trainer
from cnnzoo.training.checkpoint import load_checkpoint, save_checkpoint
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.evaluate import evaluate_checkpoints
from cnnzoo.training.fit import fit
from cnnzoo.training.recipes import RECIPES, default_recipe, recipe_overrides
from datagen import write_idx_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), n_train=360, n_test=100)


def tiny_cfg(root: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="lenet5", data="mnist", data_root=str(root), epochs=3, batch_size=40, lr=0.05,
                val_size=60, schedule="constant", augment=("flip",), out=str(out), progress=False,
                model_kwargs={"act": "relu", "pool": "max"})
    return TrainConfig(**{**base, **kw})


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_recipes_resolve_to_their_papers_optimiser_and_schedule():
    model = torch.nn.Linear(2, 2)
    expect = {
        "alexnet2012": (0.01, 0.9, 5e-4, False, torch.optim.lr_scheduler.ReduceLROnPlateau, 128),
        "vgg2014": (0.01, 0.9, 5e-4, False, torch.optim.lr_scheduler.ReduceLROnPlateau, 256),
        "alexnet2012-he": (0.01, 0.9, 5e-4, False, torch.optim.lr_scheduler.ReduceLROnPlateau, 128),
        "vgg2014-he": (0.01, 0.9, 5e-4, False, torch.optim.lr_scheduler.ReduceLROnPlateau, 256),
        "googlenet2014": (0.01, 0.9, 2e-4, False, torch.optim.lr_scheduler.LambdaLR, 128),
        "resnet2015": (0.1, 0.9, 1e-4, False, torch.optim.lr_scheduler.ReduceLROnPlateau, 256),
        "resnet2015-cifar": (0.1, 0.9, 1e-4, False, torch.optim.lr_scheduler.LambdaLR, 128),
        "densenet2016": (0.1, 0.9, 1e-4, True, torch.optim.lr_scheduler.LambdaLR, 64),
        "fast": (0.1, 0.9, 5e-4, True, torch.optim.lr_scheduler.LambdaLR, 128),
        "fast-identity": (0.1, 0.9, 5e-4, True, torch.optim.lr_scheduler.LambdaLR, 128),
        "squeezenet2016": (0.01, 0.9, 2e-4, False, torch.optim.lr_scheduler.LambdaLR, 128),
    }
    assert set(expect) == set(RECIPES)
    for name, (lr, mom, wd, nesterov, sched_type, batch) in expect.items():
        cfg = TrainConfig(**recipe_overrides(name), epochs=100)
        opt = trainer.build_optimizer(cfg, model)
        group = opt.param_groups[0]
        assert isinstance(opt, torch.optim.SGD)
        assert (group["lr"], group["momentum"], group["weight_decay"], group["nesterov"]) == (lr, mom, wd, nesterov)
        assert isinstance(trainer.build_scheduler(cfg, opt, 10), sched_type)
        assert cfg.batch_size == batch
    assert RECIPES["googlenet2014"]["aux_weight"] == 0.3
    assert "pca" in RECIPES["alexnet2012"]["augment"]


def test_schedules_follow_their_rules():
    steps = 10
    f = trainer.lr_factor(TrainConfig(**recipe_overrides("resnet2015-cifar"), epochs=100), steps)
    assert f(0) == 1.0 and f(499) == 1.0 and f(500) == pytest.approx(0.1) and f(750) == pytest.approx(0.01)
    f = trainer.lr_factor(TrainConfig(**recipe_overrides("googlenet2014"), epochs=100), steps)
    assert f(79) == 1.0 and f(80) == pytest.approx(0.96) and f(160) == pytest.approx(0.96 ** 2)
    f = trainer.lr_factor(TrainConfig(**recipe_overrides("fast"), epochs=10), steps)
    assert f(0) == pytest.approx(1 / 3) and f(2) == pytest.approx(1.0) and f(99) == pytest.approx(1 / 97)


def test_default_recipes_by_family():
    assert default_recipe("vgg16") == "vgg2014-he"
    assert default_recipe("lenet5") == "fast"


def test_same_seed_same_metrics(tiny, tmp_path):
    a = fit(tiny_cfg(tiny, tmp_path / "a", epochs=2), log=lambda *a: None)
    b = fit(tiny_cfg(tiny, tmp_path / "b", epochs=2), log=lambda *a: None)
    assert a["test_top1"] == b["test_top1"] and a["test_loss"] == b["test_loss"]
    wa, wb = weights(tmp_path / "a" / "last.pt"), weights(tmp_path / "b" / "last.pt")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert a["test_top1"] > 0.3  # it learns the generated patterns
    for name in ("metrics.csv", "report.json", "curves.png", "confusion.png", "best.pt", "config.json"):
        assert (tmp_path / "a" / name).is_file()
    assert list((tmp_path / "a" / "tensorboard").iterdir())
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert len(report["confusion"]) == 10 and sum(map(sum, report["confusion"])) == 100
    # unset, it resolves with --amp auto: channels_last where bf16 was measured faster on this CPU, else off
    assert (report["config"]["amp"], report["config"]["channels_last"]) in (("off", False), ("bf16", True))


def test_epoch_lines_show_validation_only_when_there_is_a_split(tiny, tmp_path):
    lines: list[str] = []
    fit(tiny_cfg(tiny, tmp_path / "v", epochs=1), log=lines.append)
    fit(tiny_cfg(tiny, tmp_path / "n", epochs=1, val_size=0), log=lines.append)
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 2 and "val loss" in epochs[0] and "val" not in epochs[1]


def _cli(root: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "cnnzoo", "train", "lenet5", "--data", "mnist", "--data-root", str(root),
            "--epochs", "4", "--batch-size", "40", "--lr", "0.05", "--val-size", "60", "--schedule", "constant",
            "--out", str(out), "--no-progress", "--model-arg", "act='relu'", "--recipe", "fast", "--augment", "flip", *extra]


def test_resume_after_kill_9_reaches_the_same_weights(tiny, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli(tiny, tmp_path / "whole"), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cli(tiny, killed), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (killed / "last.pt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (killed / "last.pt").exists()
    done_epoch = load_checkpoint(killed / "last.pt")["epoch"]
    subprocess.run(_cli(tiny, killed, "--resume"), check=True, env=env, capture_output=True)
    whole, resumed = weights(tmp_path / "whole" / "last.pt"), weights(killed / "last.pt")
    assert all(torch.equal(whole[k], resumed[k]) for k in whole), f"resumed after epoch {done_epoch}"
    a = json.loads((tmp_path / "whole" / "report.json").read_text())
    b = json.loads((killed / "report.json").read_text())
    assert a["test_top1"] == b["test_top1"] and a["confusion"] == b["confusion"]
    assert (killed / "metrics.csv").read_text().count("\n") == 5  # header + 4 epochs, no duplicates


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny, tmp_path, monkeypatch):
    out = tmp_path / "run"
    fit(tiny_cfg(tiny, out, epochs=1), log=lambda *a: None)
    good = weights(out / "last.pt")
    real = trainer.loss_fn

    def poisoned(cfg):
        compute = real(cfg)

        def f(o, y):
            loss, logits = compute(o, y)
            return loss * float("nan"), logits
        return f

    monkeypatch.setattr(trainer, "loss_fn", poisoned)
    with pytest.raises(trainer.TrainingDiverged, match="epoch 2, step 1"):
        fit(tiny_cfg(tiny, out, epochs=2), resume=True, log=lambda *a: None)
    kept = weights(out / "last.pt")
    assert all(torch.equal(good[k], kept[k]) for k in good)


def test_interrupted_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"epoch": 1, "model": {"w": torch.ones(3)}})

    def dies_midway(obj, f, *a, **k):
        Path(f).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", dies_midway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, {"epoch": 2, "model": {"w": torch.zeros(3)}})
    monkeypatch.undo()
    ckpt = load_checkpoint(path)
    assert ckpt["epoch"] == 1 and torch.equal(ckpt["model"]["w"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_two_process_torchrun_equals_one_process(tiny, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = ["--epochs", "2", "--augment", "crop,flip", "--amp", "off"]  # --amp auto measures per machine, not per process count
    single = _cli(tiny, tmp_path / "one", *args)
    subprocess.run(single, check=True, env=env, capture_output=True)
    dist = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29517",
            "-m", "cnnzoo", *_cli(tiny, tmp_path / "two", *args)[3:]]
    res = subprocess.run(dist, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    a, b = weights(tmp_path / "one" / "last.pt"), weights(tmp_path / "two" / "last.pt")
    assert all(torch.allclose(a[k], b[k], atol=1e-5, rtol=1e-4) for k in a)
    assert "2 processes" in res.stdout


def test_eval_reports_each_checkpoint_and_their_ensemble(tiny, tmp_path, capsys):
    for seed in (0, 1):
        fit(tiny_cfg(tiny, tmp_path / f"s{seed}", epochs=1, seed=seed), log=lambda *a: None)
    paths = [tmp_path / "s0" / "best.pt", tmp_path / "s1" / "best.pt"]
    rows = evaluate_checkpoints(paths, tta="flip")
    assert len(rows) == 3 and rows[2]["name"] == "ensemble of 2"
    assert all(0.0 <= r["top1"] <= 1.0 for r in rows)
    assert main(["eval", *map(str, paths)]) == 0
    assert "ensemble of 2" in capsys.readouterr().out


def test_user_errors_are_one_line_and_exit_2(tiny, tmp_path, capsys):
    cases = [
        (["train", "lenet55"], "did you mean lenet5"),
        (["train", "lenet5", "--data", "folder:/nonexistent"], "does not exist"),
        (["train", "lenet5", "--data", "mnist", "--data-root", str(tiny), "--schedule", "sometimes"], "--schedule must be plateau, multistep"),
        (["train", "lenet5", "--recipe", "bogus"], "unknown recipe"),
        (["train", "lenet5", "--resume", "--out", str(tmp_path / "none")], "no checkpoint"),
        (["eval", str(tmp_path / "missing.pt")], "no checkpoint"),
        (["train", "lenet5", "--config", str(tmp_path / "missing.toml")], "does not exist"),
        (["train", "lenet5", "--data", "mnist", "--data-root", str(tiny), "--model-arg", "norm=ln"],
         "lenet5 refused its arguments (act must be one of"),
        (["train", "lenet5", "--data", "mnist", "--data-root", str(tiny), "--model-arg", "depth=8"],
         "unexpected keyword argument 'depth'"),
        (["train", "lenet5", "--batch-size", "0"], "--batch-size must be at least 1, got 0"),
        (["train", "lenet5", "--epochs", "0"], "--epochs must be at least 1, got 0"),
        (["train", "lenet5", "--lr", "-1"], "--lr must be positive"),
        (["train", "lenet5", "--ema", "2"], "--ema must be in (0, 1)"),
        (["train", "lenet5", "--label-smoothing", "1.5"], "--label-smoothing must be in [0, 1)"),
        (["train", "lenet5", "--augment", "crop,mixup"], "unknown augmentation 'mixup' in --augment"),
        (["list", "zzz*"], "no registered model matches 'zzz*'"),
        (["check", "zzz*"], "no registered model matches 'zzz*'"),
        # a device string is checked once, whichever command takes it
        (["train", "lenet5", "--device", "tpu"], "--device must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
        (["train", "lenet5", "--device", "cuda:x"], "--device must be auto, cpu, cuda, cuda:N or mps"),
        (["eval", str(tmp_path / "x.pt"), "--device", "tpu"], "'tpu' is not a device; use auto, cpu, cuda"),
        (["features", "lenet5", "--weights", "x.pt", "--data", "mnist", "--device", "gpu"], "'gpu' is not a device"),
        # flags: type, range and choice, before any data is read
        (["train", "lenet5", "--epochs", "many"], "argument --epochs: expected a whole number, got 'many'"),
        (["train", "lenet5", "--lr", "fast"], "argument --lr: expected a number, got 'fast'"),
        (["train", "lenet5", "--milestones", "0.5,x"], "argument --milestones: expected comma-separated numbers"),
        (["train", "lenet5", "--milestones", "1.5"], "--milestones must be fractions of the run, in [0, 1]"),
        (["train", "lenet5", "--classes", "-1"], "--classes must be class numbers, 0 or more"),
        (["train", "lenet5", "--optimizer", "rmsprop"], "--optimizer must be sgd or adamw, got 'rmsprop'"),
        (["train", "lenet5", "--amp", "fp8"], "--amp must be auto, bf16, fp16 or off"),
        (["train", "lenet5", "--small-input", "crop"], "--small-input must be variant or upsample"),
        (["train", "lenet5", "--data", "folder:"], "--data must be a dataset name or folder:PATH"),
        (["train", "lenet5", "--model-arg", "norm"], "--model-arg takes KEY=VALUE, got 'norm'"),
        # each training command takes only its own flags, and says which command takes the other's
        (["train", "lenet5", "--weights", "imagenet"], "--weights is an option of `cnnzoo finetune`"),
        (["train", "lenet5", "--strategy", "full"], "--strategy is an option of `cnnzoo finetune`"),
        (["finetune", "lenet5", "--weights", "x.pt", "--small-input", "upsample"],
         "--small-input is an option of `cnnzoo train`"),
        (["finetune", "lenet5", "--weights", "x.pt", "--strategy", "top:0"], "--strategy: unknown strategy 'top:0'"),
        (["finetune", "lenet5", "--weights", "x.pt", "--bn", "maybe"], "--bn must be frozen or train, got 'maybe'"),
        (["finetune", "lenet5", "--weights", "x.pt", "--lr-spread", "0.5"], "--lr-spread must be at least 1"),
        # the analysis and other commands' options
        (["summary", "vgg16", "--depth", "x"], "argument --depth: 'x' is not a whole number"),
        (["summary", "vgg16", "--input", "abc"], "input size 'abc' is not of the form CxHxW"),
        (["summary", "vgg16", "--plot", str(tmp_path / "x.pt" / "chart.png")], "x.pt is a file, not a folder"),
        (["compare", "vgg16", "--plot", str(tmp_path / "chart.txt")], "a chart is written as .png"),
        (["compare", "vgg16", "nope"], "unknown model 'nope'"),
        (["compare", "vgg16", "runs/gone/best.pt"], "runs/gone/best.pt: no such file; give a registered model name"),
        (["summary", "gone-pruned.pt"], "gone-pruned.pt: no such file"),
        (["eval", str(tmp_path / "x.pt"), "--batch-size", "0"], "argument --batch-size: must be at least 1, got 0"),
        (["features", "lenet5", "--weights", "x.pt", "--data", "mnist", "--limit-per-class", "0"], "at least 1"),
        (["run", "--epochs", "0"], "argument --epochs: must be at least 1, got 0"),
        (["info"], "the following arguments are required: model"),
        (["finetune", "lenet5", "--weights", str(tmp_path / "none.pt"), "--data", "mnist", "--data-root", str(tiny)],
         "none.pt' does not exist"),
        (["train", "lenet5", "--out", str(tmp_path / "x.pt")], "--out must be a folder, not an existing file"),
    ]
    files = {
        "many.toml": ('epochs = "many"\n', "epochs in config file {} must be a whole number, got 'many'"),
        "zero.toml": ("epochs = 0\n", "epochs in config file {} must be at least 1, got 0"),
        "flip.toml": ('augment = "flip"\n', "augment in config file {} must be a list of strings, got 'flip'"),
        "lr.toml": ("lr = true\n", "lr in config file {} must be a number, got True"),
        "args.toml": ("model_kwargs = 3\n", "model_kwargs in config file {} must be a table"),
        "device.toml": ('device = "tpu"\n', "device in config file {} must be auto, cpu, cuda, cuda:N or mps"),
        "weights.toml": ('weights = "imagenet"\n', "weights in config file {} is a setting of `cnnzoo finetune`"),
        "broken.toml": ("[epochs\n", "cannot parse {}"),
        "list.toml": ("wait = [1,\n", "cannot parse {}"),
    }
    for name, (text, message) in files.items():
        (tmp_path / name).write_text(text)
        cases.append((["train", "lenet5", "--config", str(tmp_path / name)], message.format(tmp_path / name)))
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    for argv, message in cases:
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse's own errors exit from inside the parser, also with code 2
            code = exc.code
        assert code == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1 and "Traceback" not in err, (argv, err)


def test_config_file_layers_under_flags(tiny, tmp_path):
    from cnnzoo.cli import build_parser
    from cnnzoo.commands.train import resolve_config

    conf = tmp_path / "run.toml"
    conf.write_text('recipe = "resnet2015-cifar"\nepochs = 7\nbatch_size = 32\naugment = ["flip"]\n')
    args = build_parser().parse_args(["train", "lenet5", "--config", str(conf), "--batch-size", "16"])
    cfg = resolve_config(args)
    assert (cfg.recipe, cfg.epochs, cfg.batch_size, cfg.augment, cfg.lr) == ("resnet2015-cifar", 7, 16, ("flip",), 0.1)
    conf.write_text("epochs = 3\nwarp_speed = 9\n")
    args = build_parser().parse_args(["train", "lenet5", "--config", str(conf)])
    with pytest.raises(CnnzooError, match="unknown setting.*warp_speed"):
        resolve_config(args)
