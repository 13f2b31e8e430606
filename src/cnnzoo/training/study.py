"""How much are pretrained weights worth? Each strategy at each data size, with the same budget.

Every run has the same epochs, batch size and schedule; ``scratch`` is the same architecture and input
pipeline without the weights, trained fully — the baseline of the lecture's claim that transfer learning
matters most when data is scarce (and Yosinski et al. 2014, https://arxiv.org/abs/1411.1792). ``logreg``
is the linear probe solved by logistic regression (:mod:`cnnzoo.training.linear_probe`).

Each run has its own folder (``linear-100``, ``top1-1000``, ...) and the study resumes: a run whose
``report.json`` exists is read, not repeated, and one interrupted mid-way continues from its checkpoint.
The results go to ``study.csv``, ``study.md`` and ``study.png`` (accuracy against examples per class).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ..weights import atomic_write
from .config import TrainConfig
from .outputs import write_csv
from .transfer import parse_strategy

FIELDS = ["strategy", "per_class", "test_top1", "time_s"]


def run_study(base: TrainConfig, per_class: list[int], strategies: list[str], out: Path,
              log: Any = print) -> list[dict[str, Any]]:
    """Train every strategy at every size; returns the rows of the table (also written to ``out``)."""
    from .fit import fit

    for s in strategies:
        if s != "logreg":
            parse_strategy(s)  # a typo fails before the first run, not after hours
    rows: list[dict[str, Any]] = []
    runs = [(k, s) for k in sorted(per_class) for s in strategies]
    for i, (k, strategy) in enumerate(runs, 1):
        folder = out / f"{strategy.replace(':', '')}-{k}"
        cfg = dataclasses.replace(base, strategy=strategy, limit_per_class=k, out=str(folder))
        if (folder / "report.json").is_file():
            report, how = json.loads((folder / "report.json").read_text()), "done before"
        elif strategy == "logreg":
            from .linear_probe import linear_probe

            report, how = linear_probe(dataclasses.replace(cfg, strategy="linear"), log=_quiet), "fitted"
        else:
            report, how = fit(cfg, resume=(folder / "last.pt").is_file(), log=_quiet), "trained"
        row = {"strategy": strategy, "per_class": k, "test_top1": report["test_top1"], "time_s": report["train_time_s"]}
        rows.append(row)
        log(f"[{i}/{len(runs)}] {strategy:<8} {k:>6} per class: test accuracy {row['test_top1']:.4f}, "
            f"{row['time_s']:.1f} s ({how}; {folder})")
        write_table(out, rows)
    weights = "/".join(Path(base.weights or "no weights").parts[-2:])
    plot_study(out / "study.png", rows, f"{base.model} from {weights} on {base.data}")
    log(f"study: {out / 'study.csv'}, {out / 'study.md'}, {out / 'study.png'}")
    return rows


def _quiet(*args: Any, **kwargs: Any) -> None:
    pass


def write_table(out: Path, rows: list[dict[str, Any]]) -> None:
    """``study.csv`` and ``study.md``, rewritten whole after every run."""

    write_csv(out / "study.csv", list(FIELDS), rows)
    lines = ["| strategy | per class | test accuracy | time (s) |", "|---|---:|---:|---:|"]
    lines += [f"| {r['strategy']} | {r['per_class']} | {r['test_top1']:.4f} | {r['time_s']:.1f} |" for r in rows]
    atomic_write(out / "study.md", lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def plot_study(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    """Test accuracy against examples per class (log x), one line per strategy."""
    from .outputs import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        mine = sorted((r["per_class"], r["test_top1"]) for r in rows if r["strategy"] == strategy)
        ax.plot([k for k, _ in mine], [a for _, a in mine], marker="o", label=strategy)
    ax.set_xscale("log")
    sizes = sorted({r["per_class"] for r in rows})
    ax.set_xticks(sizes, [str(k) for k in sizes])
    ax.minorticks_off()
    ax.set(xlabel="training examples per class", ylabel="test accuracy", title=title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    plt.close(fig)
