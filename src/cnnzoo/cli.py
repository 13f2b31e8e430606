"""The ``cnnzoo`` command line. Each command lives in :mod:`cnnzoo.commands` and registers itself here.

A user's mistake (a :class:`~cnnzoo.errors.CnnzooError`, or a bad option) prints one line and exits
with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import pkgutil
import sys
import warnings
from pathlib import Path

from .errors import CnnzooError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every user error
        self.exit(2, f"cnnzoo: error: {message} (see `{self.prog} --help`)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every command.

    Given ``argv``, only the module of the command it names is imported and registers its options; the
    others are listed by the names and help of their ``add_parser`` calls, read from their source. So
    ``cnnzoo --help`` imports no torch, and each command pays only for the imports it uses.
    """
    from . import commands

    parser = _Parser(prog="cnnzoo", description=__import__("cnnzoo").__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = None if argv is None else next((a for a in argv if not a.startswith("-")), "")
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        listed = None if wanted is None else _listed_commands(Path(commands.__path__[0]) / f"{module.name}.py")
        if listed is None or wanted in listed:
            importlib.import_module(f"{commands.__name__}.{module.name}").register(sub)
        else:
            for name, text in listed.items():
                sub.add_parser(name, help=text)
    return parser


def _listed_commands(path: Path) -> dict[str, str] | None:
    """Name -> help of the commands that ``register(sub)`` in ``path`` adds, read from its source; None
    unless every one is a plain literal (the module is then imported and asked)."""
    try:
        tree = ast.parse(path.read_text())
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None
    register = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "register"), None)
    if register is None or not register.args.args:
        return None
    sub = register.args.args[0].arg
    calls = sorted((n for n in ast.walk(register) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                    and n.func.attr == "add_parser" and isinstance(n.func.value, ast.Name)
                    and n.func.value.id == sub), key=lambda n: n.lineno)
    found: dict[str, str] = {}
    for call in calls:
        keywords = {k.arg: k.value for k in call.keywords}
        text = keywords.get("help")
        if (not call.args or not isinstance(call.args[0], ast.Constant) or not isinstance(text, ast.Constant)
                or "aliases" in keywords):
            return None
        found[call.args[0].value] = text.value
    return found or None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    warnings.formatwarning = lambda msg, cat, *a, **k: f"warning: {msg}\n"
    try:
        return args.func(args) or 0
    except CnnzooError as exc:
        if args.debug:
            raise
        print(f"cnnzoo: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # a run's Interrupted says what was saved and how to continue
        print("cnnzoo: interrupted" + (f"; {exc}" if str(exc) else ""), file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnzoo summary vgg16 | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
