"""``cnnzoo finetune``: adapt pretrained weights to a new dataset (transfer learning).

The same settings as ``cnnzoo train`` (every :class:`~cnnzoo.training.config.TrainConfig` field is a flag,
layered recipe → fine-tuning defaults → ``--config`` file → flags), with the fine-tuning defaults of
:data:`~cnnzoo.training.recipes.FINETUNE`: ``--strategy auto`` picks what to retrain by the 2x2 rule of
cs231n lecture 9 and says why. ``--solver logreg`` fits a logistic regression on the frozen network's
features instead of SGD (the lecture's "linear classifier on CNN codes"; fastest on a CPU).
"""

from __future__ import annotations

import argparse
import dataclasses

from ..errors import CnnzooError
from ..training.config import TrainConfig
from .train import add_config_flags, check_weights, print_config, resolve_config


def register(sub: argparse._SubParsersAction) -> None:
    from ..training.recipes import FINETUNE

    p = sub.add_parser("finetune", help="fine-tune pretrained weights on a new dataset (transfer learning)",
                       description="Fine-tune MODEL from --weights on --data. --strategy auto (the default) "
                                   "chooses linear, top:K or full from the data's size and similarity.")
    add_config_flags(p, skip=frozenset({"similar"}), defaults=FINETUNE, scope="finetune")
    similar = p.add_mutually_exclusive_group()
    similar.add_argument("--similar", dest="similar", action="store_const", const=True, default=argparse.SUPPRESS,
                         help="the data resembles the pretraining data (for --strategy auto; default: measured)")
    similar.add_argument("--different", dest="similar", action="store_const", const=False,
                         default=argparse.SUPPRESS, help="the data does not resemble the pretraining data")
    p.add_argument("--solver", choices=["sgd", "logreg"], default="sgd",
                   help="logreg: a logistic regression on the frozen network's features, i.e. --strategy "
                        "linear solved exactly (needs scikit-learn)")
    p.add_argument("--layer", default="pre_logits",
                   help="--solver logreg: the layer whose pooled output is the features (default pre_logits)")
    p.set_defaults(func=cmd_finetune)


def finetune_config(args: argparse.Namespace) -> TrainConfig:
    """The resolved config; without ``--out`` each run gets a new folder, ``runs/MODEL-DATA-finetune``,
    ``-2``, ... (chosen when it starts)."""
    from ..training.recipes import FINETUNE

    cfg = resolve_config(args, FINETUNE)
    if not cfg.weights:
        raise CnnzooError("finetune needs --weights: a cnnzoo checkpoint (.pt), a .safetensors or torchvision .pth "
                          "file, or a registered tag such as imagenet")
    return cfg


def cmd_finetune(args: argparse.Namespace) -> int:
    from ..registry import model_info

    model_info(args.model)  # an unknown name fails here, before any data is read
    if args.print_config:
        from ..training.recipes import FINETUNE

        return print_config(args, "finetune", FINETUNE)
    cfg = finetune_config(args)
    check_weights(cfg.model, cfg.weights)
    if args.solver == "logreg":
        from ..training.linear_probe import linear_probe

        if cfg.strategy not in ("linear", "auto"):
            raise CnnzooError(f"--solver logreg fits only the classifier; use it with --strategy linear, "
                              f"not {cfg.strategy}")
        linear_probe(dataclasses.replace(cfg, strategy="linear"), layer=args.layer, overwrite=args.overwrite)
        return 0
    if args.layer != "pre_logits":
        raise CnnzooError("--layer is for --solver logreg; SGD fine-tuning trains the model's own classifier")
    from ..training.fit import fit

    fit(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
