"""Knowledge distillation: the loss is Hinton et al.'s formula; ``cnnzoo distill`` trains the student through the
training loop beside its baseline; a teacher of other classes and a file without its recipe are one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.training.checkpoint import load_checkpoint
from cnnzoo.training.trainer import distillation_loss
from conftest import trained_lenet5


def test_distillation_loss_is_the_textbook_formula_on_a_fixed_batch():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 10, generator=g), 3 * torch.randn(8, 10, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    T, alpha = 4.0, 0.7
    p = torch.softmax(teacher / T, dim=1)
    q = torch.softmax(student / T, dim=1)
    kl = (p * (p.log() - q.log())).sum(1).mean()
    ce = -torch.log_softmax(student, dim=1)[torch.arange(8), y].mean()
    expected = alpha * T ** 2 * kl + (1 - alpha) * ce
    assert torch.allclose(distillation_loss(student, teacher, y, T, alpha), expected, rtol=1e-6)
    assert torch.allclose(distillation_loss(student, teacher, y, T, 0.0), ce)
    assert distillation_loss(teacher, teacher, y, T, 1.0).abs().item() < 1e-6  # a student equal to its teacher


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    data, run = trained_lenet5(tmp_path_factory.mktemp("distill"), epochs=2, val_size=0)
    return data, run / "best.pt"


def test_distill_trains_the_student_and_its_baseline_and_alpha_0_is_the_baseline(teacher, tmp_path, capsys):
    _, path = teacher
    out = tmp_path / "kd"
    assert main(["distill", "--teacher", str(path), "--student", "lenet5", "--epochs", "1", "--alpha", "0",
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "computed once" in text and "augmentation is off" in text
    report = json.loads((out / "report.json").read_text())
    assert report["augmentation"] == "off" and report["alpha"] == 0
    # alpha 0 is the labels' loss alone: the same run as the baseline, bit for bit
    student, baseline = load_checkpoint(out / "student" / "best.pt"), load_checkpoint(out / "baseline" / "best.pt")
    assert all(torch.equal(student["model"][k], baseline["model"][k]) for k in student["model"])
    assert f"test top-1 {report['student_top1']:.4f}" in text and f"{report['baseline_top1']:.4f}" in text


def test_distill_without_baseline_trains_only_the_student(teacher, tmp_path, capsys):
    _, path = teacher
    out = tmp_path / "kd"
    assert main(["distill", "--teacher", str(path), "--student", "lenet5", "--epochs", "1", "--no-baseline",
                 "--out", str(out)]) == 0
    assert not (out / "baseline").exists()
    report = json.loads((out / "report.json").read_text())
    assert report["baseline_top1"] is None and 0 <= report["student_top1"] <= 1
    assert cnnzoo.load(out / "student" / "best.pt").model_name == "lenet5"
    # --overwrite trains the student again (another alpha), not taking the one it replaces as finished
    capsys.readouterr()
    assert main(["distill", "--teacher", str(path), "--student", "lenet5", "--epochs", "1", "--no-baseline",
                 "--alpha", "0.5", "--out", str(out), "--overwrite"]) == 0
    assert "finished before" not in capsys.readouterr().out
    assert json.loads((out / "report.json").read_text())["alpha"] == 0.5
    # without it, the folder's student is a run the command will not replace
    (out / "report.json").unlink()
    assert main(["distill", "--teacher", str(path), "--student", "lenet5", "--no-baseline", "--out", str(out)]) == 2
    assert "holds an unfinished run" in capsys.readouterr().err


def test_a_teacher_of_other_classes_is_one_line(teacher, tmp_path, capsys):
    data, path = teacher
    assert main(["distill", "--teacher", str(path), "--student", "lenet5", "--data", "fashion-mnist",
                 "--data-root", str(data), "--epochs", "1", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "the teacher" in err and "distil on the data the teacher was trained on" in err and err.count("\n") == 1


def test_a_teacher_without_its_recipe_is_one_line(teacher, tmp_path, capsys):
    _, path = teacher
    cnnzoo.load(path).save(tmp_path / "t.safetensors")
    assert main(["distill", "--teacher", str(tmp_path / "t.safetensors"), "--student", "lenet5"]) == 2
    err = capsys.readouterr().err
    assert "no recipe" in err and err.count("\n") == 1


def test_the_teachers_top1_is_said_and_a_teacher_near_chance_is_warned_of(teacher, tmp_path, capsys):
    _, path = teacher
    run = tmp_path / "weak"
    run.mkdir()
    (run / "best.pt").write_bytes(path.read_bytes())
    report = json.loads((path.parent / "report.json").read_text())
    (run / "report.json").write_text(json.dumps(report | {"test_top1": 0.11}))
    assert main(["distill", "--teacher", str(run / "best.pt"), "--student", "lenet5", "--epochs", "1",
                 "--no-baseline", "--out", str(tmp_path / "kd")]) == 0
    text = capsys.readouterr().out
    assert "the teacher's test top-1: 0.1100" in text and "warning: the teacher is near chance (0.1100" in text
    assert main(["distill", "--teacher", str(path), "--student", "lenet5", "--epochs", "1", "--no-baseline",
                 "--out", str(tmp_path / "kd2")]) == 0
    text = capsys.readouterr().out
    assert f"the teacher's test top-1: {report['test_top1']:.4f}" in text and "near chance" not in text
