"""The report's diagram layout on every registered model, measured in headless Chromium.

For each model, the page is built as ``cnnzoo report`` builds it, then ``cnnzoo.report.measure_layout`` presses
the diagram's buttons ("Blocks", the page's first view; "Open stages"; "Open all") and counts, in the browser's
own geometry: sibling frames that overlap, boxes that overlap, frame titles outside their frame, edges that cross
a box they do not connect, concatenations whose side-by-side inputs are out of the model's order, and the drift
of the last box from the first against one box width. The targets (issue 17) are 0, 0, 0, 0, 0 and drift <= one
box width for every model and view; the page must stay <= 600 kB.

Run: ``python benchmarks/report_layout.py [--models M ...]`` (all 81 take a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

from cnnzoo.analysis import analyze
from cnnzoo.commands.report import model_facts
from cnnzoo.registry import list_models
from cnnzoo.report import measure_layout, report_html
from cnnzoo.runtime.precision import machine

VIEWS = ("Blocks", "Open stages", "Open all")
COUNTS = ("frame_overlaps", "box_overlaps", "titles_outside", "crossings", "misordered")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=None, help="default: every registered model")
    args = parser.parse_args()
    names = args.models or list_models()
    print(machine().line())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    head = f"{'model':26} {'kB':>5} " + " ".join(f"{v[:11]:>24}" for v in VIEWS) + "  seconds"
    print(head)
    print(f"{'':26} {'':>5} " + " ".join(f"{'boxes ovl/tit/crs/ord drift':>24}" for _ in VIEWS))
    failures, largest, totals = [], 0, dict.fromkeys(COUNTS, 0)
    for name in names:
        t0 = time.perf_counter()
        html = report_html([analyze(name)], [model_facts(name)])
        size = len(html.encode())
        largest = max(largest, size)
        found = measure_layout(html, VIEWS)
        cells = []
        for view in VIEWS:
            m = found[view]
            bad = {k: m[k] for k in COUNTS if m[k]}
            overlaps = m["frame_overlaps"] + m["box_overlaps"]
            drift_ok = m["drift"] <= m["box_width"]
            for k in COUNTS:
                totals[k] += m[k]
            if bad or not drift_ok:
                failures.append(f"{name} / {view}: {bad or ''} drift {m['drift']} (box {m['box_width']})")
            cells.append(f"{m['boxes']:>5} {overlaps}/{m['titles_outside']}/{m['crossings']}/{m['misordered']}"
                         f" {m['drift']:>4}{'' if drift_ok else '!'}")
        print(f"{name:26} {size / 1e3:5.0f} " + " ".join(f"{c:>24}" for c in cells) + f"  {time.perf_counter() - t0:6.1f}")
    print(f"models: {len(names)}; views per model: {len(VIEWS)}; largest page: {largest / 1e3:.0f} kB (target <= 600)")
    print("totals: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("all targets met" if not failures and largest <= 600_000 else "missed:\n  " + "\n  ".join(failures))


if __name__ == "__main__":
    main()
