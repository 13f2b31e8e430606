"""Run folders that never overwrite a run: a new default folder per run, refusal of a finished one, a lock.

- Without ``--out`` each run gets a new folder: ``runs/MODEL-DATA``, then ``-2``, ``-3`` ... (as YOLO's
  ``exp2``, Lightning's ``version_N``); ``--resume`` without ``--out`` continues the newest of them.
- An explicit ``--out`` that holds a run is refused in one line unless ``--resume`` (continue it) or
  ``--overwrite`` (replace it).
- A run holds ``.cnnzoo.lock`` in its folder with ``flock``: a second process on the same folder refuses in
  one line. The kernel drops the lock when its process dies, even by ``kill -9``, so a killed run's folder
  stays resumable; the pid written in the file is only for the messages.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CnnzooError
from ..weights import make_parents

LOCK_NAME = ".cnnzoo.lock"
#: what a run writes in its folder: ``--overwrite`` removes these (and nothing else) before the new run
RUN_FILES = ("last.pt", "best.pt", "report.json", "config.json", "metrics.csv", "curves.png", "confusion.png")


def default_base(model: str, data: str, finetune: bool = False) -> Path:
    """``runs/MODEL-DATA`` (``-finetune`` for a fine-tuning run): the first default folder of such runs."""
    return Path(f"runs/{model}-{data.replace(':', '_').replace('/', '_')}" + ("-finetune" if finetune else ""))


def numbered(base: Path) -> list[Path]:
    """``base``, ``base-2``, ``base-3`` ... that exist, in order."""
    pattern = re.compile(re.escape(base.name) + r"(?:-(\d+))?")
    found = []
    if base.parent.is_dir():
        for p in base.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m and p.is_dir() and (m.group(1) is None or int(m.group(1)) >= 2):
                found.append((int(m.group(1) or 1), p))
    return [p for _, p in sorted(found)]


def new_folder(base: Path) -> Path:
    """Create and return the first of ``base``, ``base-2``, ... that does not exist (race-free: ``mkdir``)."""
    make_parents(base)
    n = 1
    while True:
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1


def holds_run(folder: Path, parts: tuple[str, ...] = ()) -> str | None:
    """What run ``folder`` holds, in words ("a finished run (test top-1 0.8400)"), or None; a run of several
    stages (``parts``: glob patterns of its stages' files and folders) is unfinished where any part is there."""
    report = folder / "report.json"
    if report.is_file():
        try:
            top1 = json.loads(report.read_text()).get("test_top1")
        except (OSError, ValueError, AttributeError):
            top1 = None
        return "a finished run" + (f" (test top-1 {top1:.4f})" if isinstance(top1, float) else "")
    if (folder / "last.pt").is_file() or any(next(folder.glob(p), None) for p in parts):
        return "an unfinished run"
    return None


@dataclass
class Claim:
    """The folder a run writes, whether it made it, and its lock (None on a non-main process)."""

    out: Path
    created: bool
    lock: "Lock | None"
    note: str = ""

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()
        if self.created and self.out.is_dir() and not any(self.out.iterdir()):
            self.out.rmdir()  # interrupted before anything was saved: the number is free again


def claim(out: str | None, base: Path, resume: bool, overwrite: bool, lock: bool = True,
          parts: tuple[str, ...] = ()) -> Claim:
    """The run folder for ``--out`` (None: a new default folder under ``base``), checked and locked.

    ``parts``: glob patterns of the files and folders of a run made of stages (``cnnzoo prune``'s rounds,
    ``cnnzoo distill``'s two runs): they make a folder hold a run, and ``overwrite`` removes them with it, so
    that no stage of the run replaced is taken as done.
    """
    created = False
    if out is None and resume:
        found = numbered(base)
        if not found:
            raise CnnzooError(f"nothing to resume: no run folder {base} (or {base.name}-N) exists; start the run "
                              "without --resume, or give the run's --out")
        folder = found[-1]
    elif out is None:
        folder, created = new_folder(base), True
    else:
        folder = Path(out)
        created = not folder.exists()  # made here: removed again if the run fails before saving anything
    held = Lock(folder) if lock else None
    note = held.acquire() if held else ""
    try:
        what = None if resume or created else holds_run(folder, parts)
        if what and not overwrite:
            raise CnnzooError(f"{folder} holds {what}; give another --out, add --resume to continue it, or "
                              f"--overwrite to replace it")
        if what and overwrite:
            for name in RUN_FILES:
                (folder / name).unlink(missing_ok=True)
            shutil.rmtree(folder / "tensorboard", ignore_errors=True)
            for part in (p for pattern in parts for p in folder.glob(pattern)):
                if part.is_dir():
                    shutil.rmtree(part)
                else:
                    part.unlink()
    except BaseException:
        if held:
            held.release()
        raise
    return Claim(folder, created, held, note)


class Lock:
    """An exclusive ``flock`` on ``FOLDER/.cnnzoo.lock``, held while a run writes the folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> str:
        """Take the lock; returns a note when a dead process's lock was taken over ("" otherwise)."""
        import fcntl

        make_parents(self.path)
        self.path.parent.mkdir(exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read(fd)
                os.close(fd)
                who = f"process {holder['pid']} on {holder.get('host', '?')}" if holder.get("pid") else "another process"
                since = f" since {holder['started']}" if holder.get("started") else ""
                raise CnnzooError(f"{self.path.parent} is in use by {who}{since}; wait for it to end, or give "
                                  "another --out") from None
            # the file may have been removed (by the run that held it) between our open and our lock
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = _read(fd)
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}).encode())
        self.fd = fd
        if previous.get("pid") and previous.get("pid") != os.getpid():
            return (f"note: took over {self.path} from process {previous['pid']}, which is no longer running "
                    "(killed?)")
        return ""

    def release(self) -> None:
        if self.fd is None:
            return
        self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def _read(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}
