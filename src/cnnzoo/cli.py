"""The ``cnnzoo`` command line. Each command lives in :mod:`cnnzoo.commands` and registers itself here.

A user's mistake (a :class:`~cnnzoo.errors.CnnzooError`, or a bad option) prints one line and exits
with code 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import warnings

from .errors import CnnzooError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2, as for every user error
        self.exit(2, f"cnnzoo: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import commands

    parser = _Parser(prog="cnnzoo", description=__import__("cnnzoo").__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        importlib.import_module(f"{commands.__name__}.{module.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
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
    except KeyboardInterrupt:
        print("cnnzoo: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `cnnzoo summary vgg16 | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0
