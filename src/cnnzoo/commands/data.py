"""``cnnzoo data``: where datasets are, fetching them, and generating ``fashion-scenes``."""

from __future__ import annotations

import argparse

from ..argtypes import non_negative_int, positive_int
from ..datasets.fetch import SOURCES, data_home, fetch, installed_copy


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="fetch datasets into the data cache")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True, parser_class=type(p))
    f = dsub.add_parser("fetch", help="download a dataset's official files (checksummed)")
    f.add_argument("name", choices=sorted(SOURCES))
    f.add_argument("--root", help=f"where to put it (default: {data_home()})")
    f.set_defaults(func=cmd_fetch)
    s = dsub.add_parser("scenes", help="generate fashion-scenes: Fashion-MNIST items on a canvas, with masks "
                                       "and boxes (VOC and COCO layouts)",
                        description="Generate fashion-scenes, offline: real Fashion-MNIST items pasted at random "
                                    "positions and scales on a noisy canvas, with pixel masks (class = label + 1, "
                                    "background 0, 255 on the faint rim) and boxes, written in the PASCAL VOC and "
                                    "COCO layouts. Deterministic by --seed. Synthetic: no photographs.")
    s.add_argument("--out", required=True, help="folder to write (JPEGImages/, SegmentationClass/, ...)")
    s.add_argument("--n", type=positive_int, default=2000, help="training scenes (default 2000)")
    s.add_argument("--n-val", type=non_negative_int, default=None, help="validation scenes, made from Fashion-"
                                                                        "MNIST's test items (default: --n / 4)")
    s.add_argument("--size", type=positive_int, default=96, help="canvas side in pixels (default 96)")
    s.add_argument("--max-items", type=positive_int, default=4, help="items per scene, at most (default 4)")
    s.add_argument("--min-scale", type=float, default=0.9, help="smallest item side / 28 (default 0.9)")
    s.add_argument("--max-scale", type=float, default=1.7, help="largest item side / 28 (default 1.7)")
    s.add_argument("--threshold", type=int, default=50, help="item intensity above which a pixel is the item's "
                                                             "class (default 50 of 255)")
    s.add_argument("--seed", type=int, default=0, help="default 0")
    s.add_argument("--items-root", help="folder of the Fashion-MNIST IDX files (default: Debian's package or "
                                        "the data cache)")
    s.set_defaults(func=cmd_scenes)


def cmd_fetch(args: argparse.Namespace) -> int:
    from pathlib import Path

    if not args.root and (copy := installed_copy(args.name)) is not None:
        print(f"{args.name}: already installed at {copy} (Debian's package), which training reads first; "
              "nothing to download")
        return 0
    folder = fetch(args.name, Path(args.root) if args.root else None)
    print(f"{args.name}: {folder}")
    return 0


def cmd_scenes(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..datasets.scenes import SceneSpec, generate
    from ..errors import CnnzooError

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CnnzooError(f"--out {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "labels.txt").is_file():
        raise CnnzooError(f"--out {out} is a folder that holds other files; give a new or empty folder")
    spec = SceneSpec(size=args.size, max_items=args.max_items, min_scale=args.min_scale, max_scale=args.max_scale,
                     threshold=args.threshold, seed=args.seed)
    n_val = args.n // 4 if args.n_val is None else args.n_val
    generate(out, args.n, n_val, spec, Path(args.items_root) if args.items_root else None)
    return 0
