"""A run's first screen, its folder, its lock and its interruption: runs never overwrite runs."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import fields
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.training import fit as fit_module
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.fit import fit
from cnnzoo.training.runfolder import LOCK_NAME, Lock
from datagen import write_idx_dataset

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), n_train=200, n_test=50)


def argv(root: Path, *extra: str, epochs: int = 1) -> list[str]:
    return ["train", "lenet5", "--data", "mnist", "--data-root", str(root), "--epochs", str(epochs),
            "--batch-size", "50", "--val-size", "40", "--no-progress", *extra]


def cfg(root: Path, out: Path | None, **kw) -> TrainConfig:
    base = dict(model="lenet5", data="mnist", data_root=str(root), epochs=1, batch_size=50, lr=0.05, val_size=40,
                schedule="constant", out=str(out) if out else None, progress=False)
    return TrainConfig(**{**base, **kw})


# ------------------------------------------------------------------------------------------ the header

def test_header_is_short_and_names_model_data_recipe_and_only_the_changed_settings(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(argv(tiny, "--out", str(out), "--lr", "0.07")) == 0
    lines = capsys.readouterr().out.splitlines()
    head = lines[:lines.index(next(line for line in lines if line.startswith("epoch")))]
    amp = [line for line in head if line.startswith("amp auto: ")]  # on a CPU with bf16 units: what it measured
    assert len(amp) <= 1 and all(len(line) <= 100 for line in amp), amp
    head = [line for line in head if line not in amp]
    short = [line.replace(str(tiny), "D").replace(str(out), "O") for line in head]  # tmp paths are long
    assert len(head) == 3 and sum(map(len, short)) < 260 and max(map(len, short)) <= 100, head
    assert head[0] == ("cnnzoo train: lenet5 on mnist (160 train / 40 validation / 50 test), device cpu")
    assert head[1] == (f"recipe fast (lenet5's default); changed: data_root={tiny} epochs=1 batch_size=50 lr=0.07 "
                       "val_size=40")
    assert head[2] == f"run folder {out} (all settings: config.json there; --print-config shows them)"
    text = "\n".join(lines)
    assert "config:" not in text and "aux_weight" not in text and "head_lr" not in text
    saved = json.loads((out / "config.json").read_text())  # the full resolved config is still saved
    assert set(saved) == {f.name for f in fields(TrainConfig)} and saved["lr"] == 0.07


def test_header_says_when_nothing_differs_from_the_recipe(tiny, tmp_path):
    from cnnzoo.datasets.readers import load_dataset

    data = load_dataset("mnist", str(tiny))
    c = TrainConfig.from_dict({**cfg(tiny, tmp_path).to_dict(), "recipe": "fast"})
    from cnnzoo.training.recipes import recipe_overrides

    plain = TrainConfig(**{**recipe_overrides("fast"), "model": "lenet5", "recipe": "fast", "out": "runs/x"})
    head = fit_module.header(plain, "lenet5", data, (10, 0), __import__("torch").device("cpu"))
    assert head[1] == "recipe fast (lenet5's default); nothing changed"
    head = fit_module.header(TrainConfig.from_dict({**c.to_dict(), "recipe": "resnet2015"}), "lenet5", data, (10, 0),
                             __import__("torch").device("cpu"))
    assert head[1].startswith("recipe resnet2015 (chosen); changed: ")


def test_print_config_prints_every_setting_and_exits_0(capsys):
    assert main(["train", "lenet5", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert all(f"{f.name} = " in text or f"# {f.name}" in text for f in fields(TrainConfig)
               if f.metadata.get("scope", "all") in ("all", "train") and f.name not in ("model", "progress"))


# ------------------------------------------------------------------------------------- interrupted runs

def _interrupt_at(monkeypatch, at_epoch: int) -> None:
    real = fit_module.train_one_epoch

    def one_epoch(*args, **kwargs):
        if args[10] == at_epoch:  # (model, data, idx, pipeline, optimizer, scheduler, cfg, g, device, dist, epoch, ...)
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "train_one_epoch", one_epoch)


def test_interrupted_run_says_what_was_saved_and_the_exact_command_that_continues(tiny, tmp_path, capsys,
                                                                                  monkeypatch):
    out = tmp_path / "run"
    _interrupt_at(monkeypatch, 2)
    assert main(argv(tiny, "--out", str(out), epochs=3)) == 130
    err = capsys.readouterr().err.strip()
    command = f"cnnzoo train lenet5 --out {out} --epochs 3 --resume"
    assert err == f"cnnzoo: interrupted; {out / 'last.pt'} holds epoch 1 of 3; continue from there with: {command}"
    monkeypatch.undo()
    assert main([*shlex.split(command)[1:], "--no-progress"]) == 0  # the command as said, nothing added
    assert "resumed from" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["epochs"] == 3 and (out / "metrics.csv").read_text().count("\n") == 4


def test_a_ctrl_c_that_lands_in_a_finaliser_is_not_lost(tiny, tmp_path, capsys, monkeypatch):
    # Python drops an exception raised in a __del__ ("Exception ignored in ..."): the Ctrl-C must still stop the run.
    real = fit_module.train_one_epoch

    class Finaliser:
        def __del__(self):
            raise KeyboardInterrupt

    def one_epoch(*args, **kwargs):
        if args[10] == 2:
            Finaliser()  # collected at once; its KeyboardInterrupt is unraisable: the run stops after this epoch
        return real(*args, **kwargs)

    monkeypatch.setattr(fit_module, "train_one_epoch", one_epoch)
    out = tmp_path / "run"
    assert main(argv(tiny, "--out", str(out), epochs=3)) == 130
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cnnzoo: interrupted; {out / 'last.pt'} holds epoch 2 of 3") and err.count("\n") == 0, err
    assert (out / "last.pt").exists() and not (out / "report.json").exists()


def test_interrupted_before_the_first_checkpoint_says_nothing_was_saved(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _interrupt_at(monkeypatch, 1)
    assert main(argv(tiny)) == 130
    assert capsys.readouterr().err.strip() == ("cnnzoo: interrupted; nothing was saved yet (no epoch had finished); "
                                               "run the same command again to start over")
    assert not (tmp_path / "runs" / "lenet5-mnist" / "last.pt").exists()
    assert not (tmp_path / "runs" / "lenet5-mnist" / LOCK_NAME).exists()


def test_sigint_on_the_command_line(tiny, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "cnnzoo", *argv(tiny, "--out", str(out), "--augment", "flip", epochs=200)]
    # The child starts with Ctrl-C's default action: a process inherits an ignored SIGINT, and some test before
    # this one in the same worker leaves it ignored (the run then went on to its 200th epoch and exit 0).
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "last.pt").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=60)[1].strip()
    assert proc.returncode == 130
    assert err.startswith(f"cnnzoo: interrupted; {out / 'last.pt'} holds epoch ") and err.count("\n") == 0, err
    assert err.endswith(f"of 200; continue from there with: cnnzoo train lenet5 --out {out} --epochs 200 --resume")
    assert "Traceback" not in err and not (out / LOCK_NAME).exists()


# ------------------------------------------------------------------------------------ folders and locks

def test_default_folders_are_new_for_each_run_and_resume_takes_the_newest(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = fit(cfg(tiny, None), log=lambda *a: None)
    b = fit(cfg(tiny, None), log=lambda *a: None)
    assert a["config"]["out"] == "runs/lenet5-mnist" and b["config"]["out"] == "runs/lenet5-mnist-2"
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["lenet5-mnist", "lenet5-mnist-2"]
    lines: list[str] = []
    fit(cfg(tiny, None, epochs=2), resume=True, log=lines.append)
    assert any(line == "resumed from runs/lenet5-mnist-2/last.pt after epoch 1" for line in lines)
    assert json.loads((tmp_path / "runs" / "lenet5-mnist-2" / "report.json").read_text())["epochs"] == 2
    assert json.loads((tmp_path / "runs" / "lenet5-mnist" / "report.json").read_text())["epochs"] == 1


def test_an_explicit_folder_holding_a_run_is_refused_unless_resume_or_overwrite(tiny, tmp_path, capsys):
    out = tmp_path / "x"
    assert main(argv(tiny, "--out", str(out), epochs=2)) == 0
    first = (out / "best.pt").read_bytes()
    top1 = json.loads((out / "report.json").read_text())["test_top1"]
    capsys.readouterr()
    assert main(argv(tiny, "--out", str(out), "--lr", "0.5")) == 2
    err = capsys.readouterr().err
    assert err == (f"cnnzoo: error: {out} holds a finished run (test top-1 {top1:.4f}); give another --out, add "
                   "--resume to continue it, or --overwrite to replace it\n")
    assert (out / "best.pt").read_bytes() == first  # untouched
    assert main(argv(tiny, "--out", str(out), "--overwrite")) == 0
    assert json.loads((out / "report.json").read_text())["epochs"] == 1


def _hold_lock(folder: Path) -> subprocess.Popen:
    code = (f"import sys, time; sys.path.insert(0, {SRC!r}); from pathlib import Path; "
            f"from cnnzoo.training.runfolder import Lock; Lock(Path({str(folder)!r})).acquire(); "
            "print('locked', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_folder_in_use_is_refused_and_a_killed_processs_lock_is_taken_over(tiny, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(argv(tiny, "--out", str(out))) == 0
    holder = _hold_lock(out)
    try:
        capsys.readouterr()
        assert main(argv(tiny, "--out", str(out), "--resume", epochs=2)) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"cnnzoo: error: {out} is in use by process {holder.pid} on ") and err.count("\n") == 1
        assert err.endswith("; wait for it to end, or give another --out\n")
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (out / LOCK_NAME).exists()  # a stale lock, as kill -9 leaves it
    assert main(argv(tiny, "--out", str(out), "--resume", epochs=2)) == 0
    text = capsys.readouterr().out
    assert f"note: took over {out / LOCK_NAME} from process {holder.pid}, which is no longer running" in text
    assert json.loads((out / "report.json").read_text())["epochs"] == 2
    assert not (out / LOCK_NAME).exists()


def test_two_runs_on_one_folder_at_once_one_refuses(tiny, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "cnnzoo", *argv(tiny, "--out", str(out), epochs=50)]
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (out / LOCK_NAME).exists():
            time.sleep(0.05)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert second.returncode == 2 and f"{out} is in use by process {first.pid}" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()


def test_lock_is_exclusive_within_a_process_too(tmp_path):
    a = Lock(tmp_path)
    a.acquire()
    with pytest.raises(Exception, match="is in use by process"):
        Lock(tmp_path).acquire()
    a.release()
    Lock(tmp_path).acquire()


def test_an_explicit_out_made_by_a_run_that_saved_nothing_is_removed_again(tmp_path):
    from cnnzoo.training import runfolder

    fresh = runfolder.claim(str(tmp_path / "new"), tmp_path / "base", resume=False, overwrite=False)
    assert fresh.created and (tmp_path / "new").is_dir()
    fresh.release()  # the run failed before its first save
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()  # a folder the user had stays, empty or not
    theirs = runfolder.claim(str(tmp_path / "mine"), tmp_path / "base", resume=False, overwrite=False)
    theirs.release()
    assert not theirs.created and (tmp_path / "mine").is_dir()
