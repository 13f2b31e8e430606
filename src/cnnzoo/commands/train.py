"""``cnnzoo train`` and ``cnnzoo eval``.

Settings layer as: the config's defaults, then the recipe (``--recipe``, else the model's paper recipe),
then the command's own defaults (``cnnzoo finetune``'s), then a TOML/YAML file (``--config``), then the
flags given on the command line. Every field of :class:`~cnnzoo.training.config.TrainConfig` is a flag
(``--batch-size``, ``--augment crop,flip``, ...); :func:`add_config_flags` and :func:`resolve_config` are
shared by every command that trains.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

from ..errors import CnnzooError
from ..training.config import TrainConfig, read_config_file

_SKIP = {"model", "model_kwargs", "progress"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model with its paper's recipe",
                       description="Train MODEL. Settings: recipe, then --config file, then flags.")
    add_config_flags(p)
    p.set_defaults(func=cmd_train)

    e = sub.add_parser("eval", help="test-set accuracy of checkpoints, and of their ensemble")
    e.add_argument("checkpoints", nargs="+", metavar="CHECKPOINT")
    e.add_argument("--data", help="dataset (default: the one each checkpoint was trained on)")
    e.add_argument("--data-root")
    e.add_argument("--tta", choices=["flip", "10crop"], help="test-time augmentation")
    e.add_argument("--batch-size", type=int, default=512)
    e.add_argument("--device", default="auto")
    e.set_defaults(func=cmd_eval)


def add_config_flags(p: argparse.ArgumentParser, skip: frozenset[str] = frozenset(),
                     defaults: dict[str, Any] | None = None) -> None:
    """MODEL, --config, --resume, --model-arg, --no-progress, and a flag for every TrainConfig field not in ``skip``.

    ``defaults`` are the command's own (shown in the help); they are applied by :func:`resolve_config`.
    """
    p.add_argument("model")
    p.add_argument("--config", help="a TOML (or YAML) file of settings")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a constructor argument of the model, e.g. drop_path_rate=0.1 (repeatable)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        if f.name in _SKIP or f.name in skip:
            continue
        kind = _base_type(hints[f.name])
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else None
        default = (defaults or {}).get(f.name, default)
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                           help=f"(default {default})")
        elif kind is tuple:
            p.add_argument(flag, type=_csv({"milestones": float, "classes": int}.get(f.name, str)), default=argparse.SUPPRESS,
                           metavar="A,B", help=f"comma-separated (default {','.join(map(str, default)) or 'none'})")
        else:
            p.add_argument(flag, type=kind, default=argparse.SUPPRESS, help=f"(default {default})")


def _base_type(t: Any) -> type:
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        t = next(a for a in typing.get_args(t) if a is not type(None))
    origin = typing.get_origin(t)
    return origin or t


def _csv(kind: type):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(v) for v in text.split(",") if v.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected comma-separated {kind.__name__} values, got {text!r}") from None

    return parse


def _model_kwargs(pairs: list[str]) -> dict[str, Any]:
    import ast

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise CnnzooError(f"--model-arg takes KEY=VALUE, got {pair!r}")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def resolve_config(args: argparse.Namespace, defaults: dict[str, Any] | None = None) -> TrainConfig:
    """Defaults ← recipe ← the command's ``defaults`` ← config file ← flags.

    The recipe named by a flag or file wins over the model's.
    """
    from ..training.recipes import default_recipe, recipe_overrides

    file_values = read_config_file(args.config) if args.config else {}
    flags = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name) and f.name not in _SKIP}
    recipe = flags.get("recipe") or file_values.get("recipe") or default_recipe(args.model)
    values: dict[str, Any] = {**recipe_overrides(recipe), **(defaults or {}), **file_values, **flags}
    values.update(model=args.model, recipe=recipe, progress=args.progress)
    kwargs = {**file_values.get("model_kwargs", {}), **_model_kwargs(args.model_arg)}
    values["model_kwargs"] = kwargs
    return TrainConfig.from_dict(values)


def cmd_train(args: argparse.Namespace) -> int:
    from ..training.fit import fit
    from ..registry import model_info

    model_info(args.model)  # an unknown name fails here, before any data is read
    cfg = resolve_config(args)
    fit(cfg, resume=args.resume)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from ..training.evaluate import evaluate_checkpoints

    results = evaluate_checkpoints([Path(c) for c in args.checkpoints], data=args.data, data_root=args.data_root,
                                   tta=args.tta, batch_size=args.batch_size, device=args.device)
    for r in results:
        print(f"{r['name']:<40} top-1 {r['top1']:.4f}  top-5 {r['top5']:.4f}")
    return 0
