"""``cnnzoo prune`` (structured pruning) and ``cnnzoo distill`` (knowledge distillation): a trained network made
smaller and faster; ``cnnzoo compare FILE ... --data D --measure`` shows what each step cost and gained."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import argtypes


def _number(text: str, example: str = "") -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number{example}") from None


def _fraction(text: str) -> float:
    value = _number(text, "; give the MACs to keep as a fraction, e.g. 0.5")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"{value:g} is outside (0, 1): give the fraction of the MACs to keep, "
                                         "e.g. 0.5 for half")
    return value


def _positive_float(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value:g}")
    return value


def _weight(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{value:g} is outside [0, 1]: it weighs the teacher's term against the "
                                         "labels'")
    return value


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", help="dataset (default: the checkpoint's own)")
    p.add_argument("--data-root", help="folder holding the dataset's files (default: the data cache)")
    p.add_argument("--out", help="the folder to write (default: a new runs/MODEL-DATA-... folder)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoints")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out holds")
    p.add_argument("--limit-train", type=argtypes.positive_int, metavar="N",
                   help="train on the first N training images only (quick runs)")
    p.add_argument("--limit-test", type=argtypes.positive_int, metavar="N",
                   help="test on the first N test images only (quick runs)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="remove whole channels of a trained model (Torch-Pruning) and fine-tune it",
                       description="Structured pruning: remove whole channels of the trained model in CHECKPOINT "
                                   "until its MACs (counted exactly by cnnzoo's analyzer) are --macs of the "
                                   "unpruned network's, in --steps rounds, each fine-tuned --epochs with the run's "
                                   "own recipe. The result is a checkpoint that loads wherever a model does.")
    p.add_argument("checkpoint", help="a training run's checkpoint (runs/x/best.pt)")
    p.add_argument("--macs", type=_fraction, required=True, metavar="FRACTION",
                   help="the MACs to keep, as a fraction of the unpruned network's, in (0, 1)")
    p.add_argument("--importance", choices=["l1", "l2", "taylor"], default="l1",
                   help="how channels are ranked: their weights' L1 or L2 norm, or the Taylor estimate of the "
                        "loss change (default l1)")
    p.add_argument("--steps", type=argtypes.positive_int, default=1, metavar="K",
                   help="pruning rounds, each followed by fine-tuning (default 1)")
    p.add_argument("--epochs", type=argtypes.positive_int, default=1, metavar="E",
                   help="fine-tuning epochs after each round (default 1)")
    p.add_argument("--lr", type=_positive_float, metavar="X",
                   help="fine-tuning learning rate (default: a tenth of a trained run's, a fine-tuned run's own)")
    p.add_argument("--round-to", type=argtypes.positive_int, metavar="N",
                   help="keep every pruned layer's channels a multiple of N, e.g. 8, rounding to the nearest (a "
                        "CPU's vector units run such widths without padding; default: any width)")
    p.add_argument("--global", dest="global_pruning", action="store_true",
                   help="rank channels across all layers at once (Torch-Pruning's global pruning): each layer loses "
                        "what its channels' importance says, not the same share as every other")
    p.add_argument("--distill", action="store_true",
                   help="fine-tune by knowledge distillation from CHECKPOINT's network as it was before the cut, "
                        "beside the labels: its logits are cached, so augmentation is off")
    p.add_argument("--teacher", metavar="CHECKPOINT",
                   help="with --distill, distil from this training run's checkpoint instead (implies --distill)")
    p.add_argument("--temperature", "-T", type=_positive_float, default=4.0, metavar="T",
                   help="--distill's softmax temperature (default 4)")
    p.add_argument("--alpha", type=_weight, default=0.9, metavar="A",
                   help="--distill's weight of the teacher's term, in [0, 1] (default 0.9)")
    p.add_argument("--sparsity-epochs", type=argtypes.non_negative_int, default=0, metavar="E",
                   help="before the first cut, train E epochs with DepGraph's group-norm regulariser (Torch-Pruning's "
                        "GroupNormPruner), which fades each group's weakest channels, so the cut removes channels "
                        "the network learned to do without (default 0: none)")
    p.add_argument("--sparsity-reg", type=_positive_float, metavar="X",
                   help="--sparsity-epochs' regularisation strength (default 5e-2 / E: Torch-Pruning's ResNet-56 "
                        "recipe, 5e-4 over 100 epochs, spread over E)")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed of the fine-tuning (its data order and validation split; default: the run's own)")
    _common(p)
    p.set_defaults(func=cmd_prune)

    d = sub.add_parser("distill", help="train a small student on a trained teacher's soft labels (Hinton et al. 2015)",
                       description="Knowledge distillation: train STUDENT with its own recipe on T^2 KL(teacher || "
                                   "student at temperature T) x alpha + (1 - alpha) x cross-entropy. The teacher's "
                                   "logits are computed once per training image and cached, so augmentation is off "
                                   "for the student (and for its baseline). Unless --no-baseline, the same student "
                                   "is also trained alone with the same budget and seed, and both are printed.")
    d.add_argument("--teacher", required=True, help="the teacher: a training run's checkpoint (runs/x/best.pt)")
    d.add_argument("--student", required=True, help="the registered model to train (see `cnnzoo list`)")
    d.add_argument("--temperature", "-T", type=_positive_float, default=4.0, metavar="T",
                   help="softmax temperature of both networks' logits (default 4)")
    d.add_argument("--alpha", type=_weight, default=0.9, metavar="A",
                   help="weight of the distillation term, in [0, 1]; 1 - alpha weighs the labels' cross-entropy "
                        "(default 0.9)")
    d.add_argument("--recipe", help="the student's recipe, e.g. fast (default: the student's own, as `cnnzoo train`)")
    d.add_argument("--epochs", type=argtypes.positive_int, help="training epochs (default: the student's recipe)")
    d.add_argument("--seed", type=int, default=0, help="seed of both the student and its baseline (default 0)")
    d.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="do not train the student alone beside it")
    _common(d)
    d.set_defaults(func=cmd_distill)


def cmd_prune(args: argparse.Namespace) -> int:
    from ..training.prune import prune_run

    prune_run(Path(args.checkpoint), args.macs, importance=args.importance, steps=args.steps, epochs=args.epochs,
              lr=args.lr, round_to=args.round_to, seed=args.seed, global_pruning=args.global_pruning,
              distill=args.distill, teacher=Path(args.teacher) if args.teacher else None,
              temperature=args.temperature, alpha=args.alpha, sparsity_epochs=args.sparsity_epochs,
              sparsity_reg=args.sparsity_reg, data=args.data,
              data_root=args.data_root, out=args.out, resume=args.resume, overwrite=args.overwrite,
              limit_train=args.limit_train, limit_test=args.limit_test)
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from ..training.distill import distill_run

    distill_run(Path(args.teacher), args.student, temperature=args.temperature, alpha=args.alpha, epochs=args.epochs,
                seed=args.seed, baseline=args.baseline, recipe=args.recipe, data=args.data, data_root=args.data_root,
                out=args.out,
                resume=args.resume, overwrite=args.overwrite, limit_train=args.limit_train,
                limit_test=args.limit_test)
    return 0
