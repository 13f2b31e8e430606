"""``cnnzoo eval``: the test-set accuracy of training checkpoints, each and as an ensemble."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import argtypes


def register(sub: argparse._SubParsersAction) -> None:
    from ..runtime import ENGINE_HELP, ENGINES, PRECISION_HELP, PRECISIONS

    e = sub.add_parser("eval", help="test-set accuracy of checkpoints, and of their ensemble")
    e.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT", help="training checkpoints, or int8 files of "
                                                                      "`cnnzoo quantize`")
    e.add_argument("--data", help="dataset (default: the one each checkpoint was trained on)")
    e.add_argument("--data-root", help="folder holding the dataset's files (default: the data cache)")
    e.add_argument("--tta", choices=["flip", "10crop"], help="test-time augmentation")
    e.add_argument("--batch-size", type=argtypes.positive_int, default=512, help="images per forward pass (default 512)")
    e.add_argument("--device", type=argtypes.device, default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    e.add_argument("--engine", choices=ENGINES, default="auto", help=f"{ENGINE_HELP} (default auto)")
    e.add_argument("--precision", choices=PRECISIONS, default="auto", help=f"{PRECISION_HELP} (default auto)")
    e.add_argument("--explain", type=argtypes.non_negative_int, default=0, metavar="N",
                   help="Grad-CAM of the N errors each checkpoint was surest of and N right answers, for each of "
                        "its 5 most frequent confusions: explain/index.html beside the checkpoint")
    e.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from ..runtime import to_stderr
    from ..training.evaluate import evaluate_checkpoints

    results = evaluate_checkpoints([Path(c) for c in args.checkpoints], data=args.data, data_root=args.data_root,
                                   tta=args.tta, batch_size=args.batch_size, device=args.device,
                                   engine=args.engine, log=to_stderr, precision=args.precision,
                                   explain=args.explain)
    for r in results:
        print(f"{r['name']:<40} top-1 {r['top1']:.4f}  top-5 {r['top5']:.4f}")
        if r.get("explain"):
            print(f"  confusions explained: {r['explain']}")
    return 0
