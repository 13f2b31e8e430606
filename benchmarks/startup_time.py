"""How long the ``cnnzoo`` commands take to start, against ``python -c "import torch"`` in the same run.

Each command is a fresh interpreter, as a user's shell starts it. The commands run in rounds, one of each
per round in a rotating order, so that a change in the machine's load falls on all of them alike; each
figure is the median over ``--runs`` rounds of the wall-clock time, and of the CPU time (user + system)
the process used, which a shared machine's load disturbs less. The ratios divide by the baseline's
median. Run: ``python benchmarks/startup_time.py`` (``--runs 9`` for steadier figures);
``--before DIR`` also runs each cnnzoo command from another checkout's ``src`` folder in the same rounds
(e.g. ``git archive OLD src | tar -x -C /tmp/old``), so that a change is measured under the same load.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "python -c 'import torch'": ["-c", "import torch"],
    "python -c 'import torch, torchvision'": ["-c", "import torch, torchvision"],
    "cnnzoo summary vgg16": ["-m", "cnnzoo", "summary", "vgg16"],
    "cnnzoo summary resnet50": ["-m", "cnnzoo", "summary", "resnet50"],
    "cnnzoo list": ["-m", "cnnzoo", "list"],
    "cnnzoo info vgg16": ["-m", "cnnzoo", "info", "vgg16"],
    "cnnzoo info lenet5": ["-m", "cnnzoo", "info", "lenet5"],
    "cnnzoo --help": ["-m", "cnnzoo", "--help"],
    "cnnzoo train --help": ["-m", "cnnzoo", "train", "--help"],
}
BASELINE = "python -c 'import torch'"
BEFORE = " (before)"


def run_rounds(names: list[str], runs: int, before: str | None) -> dict[str, list[tuple[float, float]]]:
    """Each label's (wall, CPU) seconds per round; a label ending in "(before)" runs from ``before``."""
    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for r in range(runs):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            old = name.endswith(BEFORE)
            times[name].append(measure(COMMANDS[name.removesuffix(BEFORE)], before if old else None))
    return times


def measure(args: list[str], src: str | None = None) -> tuple[float, float]:
    """Wall and CPU seconds, the CPU time read from the child's resource usage; ``src`` goes first on
    the child's import path."""
    env = {**os.environ, "PYTHONPATH": src} if src else None
    t0 = time.perf_counter()
    before = os.times()
    subprocess.run([sys.executable, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env=env)
    after = os.times()
    return time.perf_counter() - t0, (after.children_user - before.children_user) + (
        after.children_system - before.children_system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="rounds; each figure is the median (default 5)")
    ap.add_argument("--only", nargs="+", metavar="NAME", help="a subset of the commands (their labels, quoted)")
    ap.add_argument("--before", metavar="DIR", help="also run the cnnzoo commands from this src folder")
    args = ap.parse_args()
    names = [BASELINE] + [n for n in COMMANDS if n != BASELINE and (not args.only or n in args.only)]
    if args.before:
        names += [n + BEFORE for n in names if n.startswith("cnnzoo")]
    load = os.getloadavg()[0]
    print(f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {load:.1f} at start; median of {args.runs} rounds, commands alternating")
    times = run_rounds(names, args.runs, args.before)
    base_wall = statistics.median(w for w, _ in times[BASELINE])
    base_cpu = statistics.median(c for _, c in times[BASELINE])
    width = max(map(len, names))
    print(f"{'command':<{width}}  {'wall s':>7}  {'x torch':>7}  {'CPU s':>6}  {'x torch':>7}")
    for name in names:
        wall = statistics.median(w for w, _ in times[name])
        cpu = statistics.median(c for _, c in times[name])
        print(f"{name:<{width}}  {wall:7.2f}  {wall / base_wall:7.2f}  {cpu:6.2f}  {cpu / base_cpu:7.2f}")
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
