"""--explain N of train, finetune and eval: the most frequent confusions, their surest errors and right answers."""

from __future__ import annotations

import json
import pytest
import torch

from cnnzoo.cli import main
from cnnzoo.explain.mistakes import Confusion, confusions, most_confident
from cnnzoo.training.fit import fit
from datagen import write_idx_dataset
from test_training import tiny_cfg

pytest.importorskip("captum")
pytest.importorskip("pytorch_grad_cam")


def test_confusions_are_counted_and_ordered_and_the_surest_come_first():
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2, 0])
    # predicted:             1  1  0  0  1  0  0  1  1
    p = torch.full((9, 3), 0.1)
    pred = [1, 1, 0, 0, 1, 0, 0, 1, 1]
    conf = [0.6, 0.9, 0.8, 0.7, 0.8, 0.5, 0.7, 0.6, 0.75]
    for i, (k, c) in enumerate(zip(pred, conf)):
        p[i, k] = c
    assert confusions(p, labels) == [Confusion(0, 1, 3), Confusion(2, 0, 2), Confusion(1, 0, 1), Confusion(2, 1, 1)]
    assert confusions(p, labels, limit=1) == [Confusion(0, 1, 3)]
    assert most_confident(p, labels, 0, 1, 2) == [1, 8]  # 0.9, then 0.75, then 0.6
    assert most_confident(p, labels, 0, 0, 5) == [2]
    assert confusions(torch.eye(3), torch.arange(3)) == []


def test_train_explain_writes_the_page_and_names_it_in_the_report(tmp_path, capsys):
    root = write_idx_dataset(tmp_path / "mnist", n_train=200, n_test=60)
    report = fit(tiny_cfg(root, tmp_path / "run", epochs=1, explain=2))
    page = tmp_path / "run" / "explain" / "index.html"
    assert report["explain"] == "explain/index.html" and page.is_file()
    assert json.loads((tmp_path / "run" / "report.json").read_text())["explain"] == "explain/index.html"
    html = page.read_text()
    shown = sorted(p.name for p in page.parent.glob("*.png"))
    assert shown and all(n.split("-")[1] in ("error", "right") for n in shown)
    errors_per_pair = {}
    for n in shown:
        pair, kind = n.split("-")[:2]
        errors_per_pair.setdefault(pair, {"error": 0, "right": 0})[kind] += 1
    assert all(v["error"] <= 2 and v["right"] <= 2 for v in errors_per_pair.values())
    assert len(errors_per_pair) <= 5 and "taken for" in html and "gradcam at" in html

    assert main(["eval", str(tmp_path / "run" / "best.pt"), "--explain", "1", "--precision", "fp32"]) == 0
    out = capsys.readouterr().out
    assert f"confusions explained: {page}" in out
    again = sorted(p.name for p in page.parent.glob("*.png"))  # train's pictures of N=2 are gone
    kinds = [tuple(n.split("-")[:2]) for n in again]
    assert len(kinds) == len(set(kinds)) and {p for p, _ in kinds} == set(errors_per_pair) and set(again) <= set(shown)


def test_bad_explain_values_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", str(tmp_path / "none.pt"), "--explain", "-1"])
    assert exc.value.code == 2 and "--explain: must be 0 or more" in capsys.readouterr().err
