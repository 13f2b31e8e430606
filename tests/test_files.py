"""Files as a careful tool writes them: the user's umask kept, a full disk said in one line, nothing half-written."""

import errno
import os
import stat
from pathlib import Path

import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.errors import DiskFullError
from cnnzoo.training.checkpoint import save_checkpoint
from cnnzoo.training.outputs import write_json
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.fit import fit
from cnnzoo.weights import atomic_write, current_umask
from datagen import write_idx_dataset


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return write_idx_dataset(tmp_path_factory.mktemp("mnist"), n_train=200, n_test=50)


def tiny_cfg(root: Path, out: Path | None, **kw) -> TrainConfig:
    base = dict(model="lenet5", data="mnist", data_root=str(root), epochs=1, batch_size=50, lr=0.05, val_size=40,
                schedule="constant", out=str(out) if out else None, progress=False)
    return TrainConfig(**{**base, **kw})


def train_argv(root: Path, *extra: str) -> list[str]:
    return ["train", "lenet5", "--data", "mnist", "--data-root", str(root), "--epochs", "1", "--batch-size", "50",
            "--val-size", "40", "--no-progress", *extra]


@pytest.fixture
def umask():
    """Set a umask for one test, restored after."""
    saved = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(saved)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_keeps_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    atomic_write(tmp_path / "a.txt", lambda tmp: Path(tmp).write_text("x"))
    save_checkpoint(tmp_path / "last.pt", {"epoch": 1})
    write_json(tmp_path / "report.json", {"a": 1})
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives: the figure to match
    for name in ("a.txt", "last.pt", "report.json", "plain.txt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


def test_a_trained_runs_files_are_readable_by_others(tmp_path, umask, tiny):
    umask(0o022)
    out = tmp_path / "run"
    fit(tiny_cfg(tiny, out), log=lambda *a: None)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in out.iterdir() if p.is_file()}
    assert {"best.pt", "last.pt", "report.json", "metrics.csv", "config.json"} <= set(modes)
    assert set(modes.values()) == {0o644}, modes


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_is_one_line_with_where_and_how_much(tmp_path):
    with pytest.raises(DiskFullError) as caught:
        atomic_write(tmp_path / "run" / "last.pt", _no_space, size=4000)
    text = str(caught.value)
    assert text.startswith("the disk is full: cannot write ") and "\n" not in text
    assert str(tmp_path / "run") in text and "4.0 kB" in text and "free" in text
    assert list((tmp_path / "run").iterdir()) == []  # no half-written file


def test_torch_saves_short_write_on_a_full_disk_is_recognised(tmp_path, monkeypatch):
    """torch.save says "unexpected pos" without an errno; with no space left it is the full disk."""
    import shutil

    from cnnzoo.training import checkpoint

    def short_write(obj, f):
        Path(f).write_bytes(b"x" * 5000)
        raise RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 530688 vs 530584")

    monkeypatch.setattr(checkpoint.torch, "save", short_write)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000))
    with pytest.raises(DiskFullError, match=r"it needs 4\.\d kB; 1\.0 kB free"):
        save_checkpoint(tmp_path / "last.pt", {"model": {"w": torch.zeros(1000)}})
    assert list(tmp_path.iterdir()) == []


def test_full_disk_on_the_cli_is_one_line_exit_2_for_every_kind_of_file(tiny, tmp_path, monkeypatch, capsys):
    """The disk fills while a file is synced: a checkpoint, a report page, an export, a results table."""
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).endswith(".tmp"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    cases = {
        "last.pt": train_argv(tiny, "--out", str(tmp_path / "run")),
        "page.html": ["report", "lenet5", "--out", str(tmp_path / "page.html")],
        "bench.csv": ["benchmark", "lenet5", "--time-budget", "0.05", "--warmup", "0", "--batch-sizes", "1",
                      "--out", str(tmp_path / "bench.csv")],
    }
    monkeypatch.setattr(os, "fsync", fsync)
    for name, argv in cases.items():
        assert main(argv) == 2, name
        err = capsys.readouterr().err.strip()
        assert err.startswith("cnnzoo: error: the disk is full: cannot write ") and "\n" not in err, err
        assert name in err and "free" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*.tmp"))


# ------------------------------------------------------------------ unreadable images, said on every run

def test_skipped_images_are_said_on_every_run_also_from_the_cache(tmp_path, monkeypatch, capsys):
    import warnings

    from cnnzoo.datasets.readers import load_dataset
    from datagen import write_image_folder

    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "cache"))
    root = write_image_folder(tmp_path / "pets", per_class=8)
    (root / "dog" / "truncated.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        (root / "cat" / name).write_bytes(b"not an image")
    expected = ("skipped 4 unreadable image file(s): cat/a.jpg, cat/b.jpg, cat/c.jpg and 1 more")
    for _ in range(2):  # decoded, then read from the cache
        with pytest.warns(UserWarning) as caught:
            d = load_dataset(f"folder:{root}", image_size=24)
        assert [str(w.message) for w in caught] == [expected]
        assert d.skipped == ("cat/a.jpg", "cat/b.jpg", "cat/c.jpg", "dog/truncated.png")
    (cache,) = (tmp_path / "cache" / "folders").iterdir()
    assert torch.load(cache, weights_only=True)["skipped"] == list(d.skipped)

    argv = ["train", "lenet5", "--data", f"folder:{root}", "--epochs", "1", "--batch-size", "8", "--no-progress",
            "--image-size", "32"]
    for n in range(2):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # said once, in the header, not again as a warning
            assert main([*argv, "--out", str(tmp_path / f"run{n}")]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[2] == "warning: " + expected, out[:4]


def test_a_truncated_decoded_cache_is_decoded_again(tmp_path, monkeypatch):
    from cnnzoo.datasets.readers import load_dataset
    from datagen import write_image_folder

    monkeypatch.setenv("CNNZOO_DATA", str(tmp_path / "cache"))
    root = write_image_folder(tmp_path / "pets")
    first = load_dataset(f"folder:{root}", image_size=24)
    (cache,) = (tmp_path / "cache" / "folders").iterdir()
    cache.write_bytes(cache.read_bytes()[:1000])  # a crash of an older version, mid-write
    again = load_dataset(f"folder:{root}", image_size=24)
    assert torch.equal(first.train_images, again.train_images)
    assert torch.load(cache, weights_only=True)["images"].shape[0] == 18  # rewritten whole


# ------------------------------------------------- one rule for outputs: missing folders are created

OUTPUTS = {
    "summary --plot": lambda d: ["summary", "lenet5", "--plot", str(d / "chart.png")],
    "compare --plot": lambda d: ["compare", "lenet5", "alexnet", "--plot", str(d / "chart.png")],
    "report --out": lambda d: ["report", "lenet5", "--out", str(d / "lenet5.html")],
    "export --out": lambda d: ["export", "lenet5", "--format", "torchscript", "--out", str(d / "lenet5.pt")],
    "benchmark --out": lambda d: ["benchmark", "lenet5", "--time-budget", "0.05", "--warmup", "0", "--batch-sizes",
                                  "1", "--out", str(d / "bench.csv")],
    "benchmark --plot": lambda d: ["benchmark", "lenet5", "--time-budget", "0.05", "--warmup", "0",
                                   "--batch-sizes", "1", "--plot", str(d / "bench.png")],
}


@pytest.mark.parametrize("what", OUTPUTS)
def test_every_command_creates_the_missing_folders_of_an_output_it_is_given(what, tmp_path, capsys):
    folder = tmp_path / "new" / "deeper"
    assert main(OUTPUTS[what](folder)) == 0, capsys.readouterr().err
    (written,) = [p for p in folder.iterdir() if not p.name.startswith(".")]
    assert written.stat().st_size > 0 and not list(folder.glob(".*.tmp"))


@pytest.mark.parametrize("what", OUTPUTS)
def test_a_file_in_the_way_of_an_output_folder_is_one_line(what, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x")
    try:
        code = main(OUTPUTS[what](tmp_path / "notes.txt" / "sub"))
    except SystemExit as exc:  # said by the option's parser, before any work
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'notes.txt'} is a file, not a folder" in err, err


def test_a_training_runs_missing_folders_are_created_too(tiny, tmp_path):
    out = tmp_path / "a" / "b" / "run"
    assert main(train_argv(tiny, "--out", str(out))) == 0 and (out / "report.json").is_file()
    (tmp_path / "f").write_text("x")
    assert main(train_argv(tiny, "--out", str(tmp_path / "f" / "run"))) == 2
