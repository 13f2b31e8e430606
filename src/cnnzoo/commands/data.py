"""``cnnzoo data``: where datasets are, and fetching them."""

from __future__ import annotations

import argparse

from ..datasets.fetch import SOURCES, data_home, fetch, installed_copy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch datasets into the data cache")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, parser_class=type(p))
    f = dsub.add_parser("fetch", help="download a dataset's official files (checksummed)")
    f.add_argument("name", choices=sorted(SOURCES))
    f.add_argument("--root", help=f"where to put it (default: {data_home()})")
    f.set_defaults(func=cmd_fetch)


def cmd_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not args.root and (copy := installed_copy(args.name)) is not None:
        print(f"{args.name}: already installed at {copy} (Debian's package), which training reads first; "
              "nothing to download")
        return 0
    folder = fetch(args.name, Path(args.root) if args.root else None)
    print(f"{args.name}: {folder}")
    return 0
