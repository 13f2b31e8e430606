"""The command line a user meets first: flag help kept beside the config, --print-config, `cnnzoo list` in a
narrow terminal or a pipe. (User mistakes and their one-line errors: test_training.py.)"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from dataclasses import fields

import pytest

from cnnzoo.cli import build_parser, main
from cnnzoo.commands.train import resolve_config
from cnnzoo.registry import list_models, model_info
from cnnzoo.training.config import TrainConfig
from cnnzoo.training.recipes import FINETUNE, RECIPES, default_recipe


def _options(command: str) -> dict[str, str]:
    """Each option string of ``command`` -> its help (None when hidden)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    return {s: a.help for a in sub._actions for s in a.option_strings}


@pytest.mark.parametrize("command", ["train", "finetune"])
def test_every_flag_has_one_line_of_help_from_its_field(command):
    options = _options(command)
    scope = {f.name: f.metadata["scope"] for f in fields(TrainConfig)}
    for name, where in scope.items():
        flag = "--" + name.replace("_", "-")
        shown = where in ("all", command) and name not in ("similar",)  # finetune spells it --similar/--different
        if where == "none":
            assert flag not in options
        elif shown:
            assert options[flag] and "\n" not in options[flag], flag
            assert options[flag].startswith(next(f.metadata["help"] for f in fields(TrainConfig) if f.name == name))
        elif name != "similar":
            assert options[flag] == "==SUPPRESS==", f"{flag} is hidden under {command}"
    assert all(h for s, h in options.items() if s.startswith("--")), "an option without help"


def test_scopes_and_shown_defaults():
    train, finetune = _options("train"), _options("finetune")
    for flag in ("--strategy", "--reinit", "--head-epochs", "--lr-spread", "--bn", "--weights"):
        assert train[flag] == "==SUPPRESS==" and finetune[flag] != "==SUPPRESS=="
    assert train["--similar"] == "==SUPPRESS==" and "--different" not in train and "--different" in finetune
    assert train["--small-input"] != "==SUPPRESS==" and finetune["--small-input"] == "==SUPPRESS=="
    # a setting a recipe overrides shows the recipe, not the config's bare default; finetune shows its own
    assert train["--lr"].endswith("(default: the recipe's)") and "0.01" not in train["--lr"]
    assert finetune["--lr"].endswith(f"(default: {FINETUNE['lr']})")
    assert train["--epochs"].endswith("(default: 10)") and finetune["--epochs"].endswith(f"(default: {FINETUNE['epochs']})")
    assert all(train["--" + k.replace("_", "-")].endswith("(default: the recipe's)")
               for r in RECIPES.values() for k in r if k != "model_kwargs")  # that one is --model-arg


def test_print_config_is_the_resolved_toml_and_loads_back(tmp_path, capsys):
    argv = ["train", "resnet20_cifar", "--lr", "0.3", "--augment", "flip", "--model-arg", "shortcut='B'"]
    assert main([*argv, "--print-config"]) == 0
    text = capsys.readouterr().out
    recipe = default_recipe("resnet20_cifar")
    assert f"recipe {recipe}: resnet20_cifar's default" in text
    assert "lr = 0.3  # flag" in text and f'schedule = "{RECIPES[recipe]["schedule"]}"  # recipe {recipe}' in text
    settings = tomllib.loads(text)
    assert "# clip_grad: unset" in text and "strategy" not in text and "weights" not in settings
    assert settings["model_kwargs"] == {"shortcut": "B"} and settings["augment"] == ["flip"]
    direct = resolve_config(build_parser().parse_args(argv))
    (tmp_path / "run.toml").write_text(text)
    loaded = resolve_config(build_parser().parse_args(["train", "resnet20_cifar", "--config", str(tmp_path / "run.toml")]))
    assert loaded == direct
    assert not list(tmp_path.glob("runs*")) and not os.path.exists("runs/resnet20_cifar-fashion-mnist")


def test_finetune_print_config_shows_its_defaults_without_weights(capsys):
    assert main(["finetune", "lenet5", "--print-config"]) == 0
    settings = tomllib.loads(capsys.readouterr().out)
    assert settings["strategy"] == FINETUNE["strategy"] and settings["epochs"] == FINETUNE["epochs"]
    assert "out" not in settings and "small_input" not in settings  # a new folder is chosen when the run starts


def _listing(capsys, monkeypatch, columns: int | None) -> list[str]:
    if columns is None:  # a pipe: no COLUMNS, and the terminal size cannot be read
        monkeypatch.delenv("COLUMNS", raising=False)

        def no_terminal(*args):
            raise OSError("not a terminal")

        monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    else:
        monkeypatch.setenv("COLUMNS", str(columns))
    assert main(["list"]) == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize("columns", [80, None, 60])
def test_list_fits_the_width_and_never_cuts_a_name(capsys, monkeypatch, columns):
    lines = _listing(capsys, monkeypatch, columns)
    names = list_models()
    table, note = lines[:2 + len(names)], lines[2 + len(names):]  # a header, a rule, one row per model
    assert max(map(len, lines)) <= (columns or 80)
    assert [line.split()[0] for line in table[2:]] == names  # nothing wraps
    assert "paper" in lines[0] and any(line.endswith("…") for line in table[2:])
    assert note == [] if "GMACs" not in lines[0] else note[0].startswith("* computed by cnnzoo") and len(note) <= 3


def test_list_shows_whole_titles_when_there_is_room(capsys, monkeypatch):
    lines = _listing(capsys, monkeypatch, 250)
    assert lines[0].split() == ["model", "year", "input", "params", "GMACs", "top-1", "paper"]
    assert all(line.endswith(model_info(line.split()[0]).paper) for line in lines[2:-1])


def test_list_gmacs_are_reference_figures_or_exact_computed_ones_marked(capsys, monkeypatch):
    lines = _listing(capsys, monkeypatch, 250)
    column = lines[0].split().index("GMACs")
    cells = {line.split()[0]: line.split()[column] for line in lines[2:-1]}
    assert "—" not in cells.values()
    assert cells["resnet20_cifar"] == "0.0406*" and cells["vgg16_cifar"] == "0.314*" and cells["lenet5"] == "0.000417*"
    assert cells["resnet50"] == f"{model_info('resnet50').gmacs:g}"  # a reference figure, unmarked
    assert lines[-1] == ("* computed by cnnzoo at the model's own input (conv and linear MACs, as `cnnzoo summary` "
                         "counts them); the others are reference figures")


def test_the_computed_gmacs_file_is_exact_and_current():
    """Every model without a reference figure has one in the file, equal to the analysis at its own input."""
    from cnnzoo.analysis import analyze
    from cnnzoo.computed import _table, needs_computing

    table = _table()
    assert set(table) == {n for n in list_models() if needs_computing(n)}, "run `python -m cnnzoo.computed`"
    assert len(table) == 44
    for name, macs in table.items():
        assert macs == analyze(name).totals.macs, name
    assert table["resnet20_cifar"] == 40_551_040 and table["lenet5"] == 416_520


def _commands(parser) -> dict[str, str]:
    action = next(a for a in parser._actions if a.dest == "command")
    return {c.dest: c.help for c in action._choices_actions}


def test_the_lazy_parser_lists_every_command_as_the_full_one_does():
    full = _commands(build_parser())
    assert _commands(build_parser(["--help"])) == full and len(full) >= 15
    for name in full:  # a command's own module is built in full; its options are all there
        sub = next(a for a in build_parser([name])._actions if a.dest == "command").choices[name]
        assert len(sub._actions) > 1, name  # a listed stub has only -h


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["finetune", "--help"]])
def test_help_imports_no_torch(argv):
    code = ("import sys\nfrom cnnzoo.cli import main\ntry:\n    main(%r)\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, sorted(m for m in sys.modules if m.startswith('cnnzoo'))\n" % argv)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-1500:]
