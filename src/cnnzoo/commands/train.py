"""``cnnzoo train``.

Settings layer as: the config's defaults, then the recipe (``--recipe``, else the model's paper recipe),
then the command's own defaults (``cnnzoo finetune``'s), then a TOML/YAML file (``--config``), then the
flags given on the command line. Every field of :class:`~cnnzoo.training.config.TrainConfig` whose scope
fits the command is a flag (``--batch-size``, ``--augment crop,flip``, ...), with the one line of help
kept beside the field; :func:`add_config_flags` and :func:`resolve_config` are shared by every command
that trains, and ``--print-config`` shows the layered result without training.
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields
from typing import Any

from .. import argtypes
from ..errors import CnnzooError
from ..training.config import TrainConfig, read_config_file, to_toml

_SKIP = {"model", "model_kwargs", "progress"}
_OTHER = {"train": "finetune", "finetune": "train"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a model from scratch with its paper's recipe",
                       description="Train MODEL from scratch. Settings layer as: the recipe (the model's "
                                   "paper recipe unless --recipe says otherwise), then the --config file, then "
                                   "flags. \"default: the recipe's\" is the recipe's value, which --print-config "
                                   "shows for a given model. To start from pretrained weights, use "
                                   "`cnnzoo finetune`.")
    add_config_flags(p)
    p.set_defaults(func=cmd_train)


class _ElsewhereAction(argparse.Action):
    """A flag of the other training command: a hidden option whose use says where it belongs."""

    def __init__(self, option_strings: list[str], dest: str, command: str = "", **kwargs: Any) -> None:
        self.command = command
        super().__init__(option_strings, dest, nargs="?", help=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        hint = ("it trains from pretrained weights" if self.command == "finetune"
                else "it trains from scratch")
        parser.error(f"{option_string} is an option of `cnnzoo {self.command}` ({hint}), not of `{parser.prog}`")


def add_config_flags(p: argparse.ArgumentParser, skip: frozenset[str] = frozenset(),
                     defaults: dict[str, Any] | None = None, scope: str = "train") -> None:
    """MODEL, --config, --print-config, --resume, --model-arg, --no-progress, and a flag for every
    TrainConfig field of ``scope`` (``train`` or ``finetune``) not in ``skip``.

    ``defaults`` are the command's own (shown in the help); they are applied by :func:`resolve_config`.
    The help shows a recipe's setting as the recipe's, not the config's bare default. The other scope's
    flags are hidden and, if given, say which command takes them.
    """
    from ..training.recipes import RECIPES

    in_recipes = {k for r in RECIPES.values() for k in r}
    p.add_argument("model", help="registered model name (see `cnnzoo list`)")
    p.add_argument("--config", metavar="FILE", help="a TOML (or YAML) file of settings, e.g. one written by "
                                                   "--print-config")
    p.add_argument("--print-config", action="store_true",
                   help="print the resolved settings as TOML (loadable with --config) and exit without training")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (default: the newest run "
                                                         "folder of MODEL and --data) from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run that --out holds (without it, a "
                                                            "folder holding a run is refused)")
    p.add_argument("--model-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="a constructor argument of the model, e.g. drop_path_rate=0.1 (repeatable)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    p.set_defaults(config_scope=scope)
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        field_scope = f.metadata.get("scope", "all")
        if f.name in _SKIP or f.name in skip or field_scope == "none":
            continue
        flag = "--" + f.name.replace("_", "-")
        if field_scope not in ("all", scope):
            p.add_argument(flag, action=_ElsewhereAction, command=_OTHER[scope], default=argparse.SUPPRESS)
            continue
        kind = _base_type(hints[f.name])
        default = f.default if f.default is not MISSING else None
        text = f.metadata.get("help", "")
        if defaults and f.name in defaults:
            shown = _show(defaults[f.name])
        elif f.name in in_recipes:
            shown = "the recipe's"
        else:  # a help that explains its own default (what None means) keeps it
            shown = None if default is None or "(default" in text else _show(default)
        text += f" (default: {shown})" if shown is not None else ""
        text = text.replace("%", "%%")
        if kind is bool:
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text)
        elif kind is tuple:
            item = typing.get_args(_strip_optional(hints[f.name]))[0]
            p.add_argument(flag, type=argtypes.csv(item), default=argparse.SUPPRESS, metavar="A,B", help=text)
        else:
            p.add_argument(flag, type=_typed(kind), default=argparse.SUPPRESS, metavar=_METAVARS.get(kind),
                           help=text)


_METAVARS = {int: "N", float: "X", str: None}


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _strip_optional(t: Any) -> Any:
    if isinstance(t, types.UnionType) or typing.get_origin(t) is typing.Union:
        return next(a for a in typing.get_args(t) if a is not type(None))
    return t


def _base_type(t: Any) -> type:
    t = _strip_optional(t)
    return typing.get_origin(t) or t


def _typed(kind: type):
    """An argparse type whose error says what was expected ("a whole number"), not the Python type."""
    if kind is str:
        return str
    what = {int: "a whole number", float: "a number"}[kind]

    def parse(text: str):
        try:
            return kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None

    parse.__name__ = kind.__name__
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


def resolve_config(args: argparse.Namespace, defaults: dict[str, Any] | None = None,
                   origins: dict[str, str] | None = None) -> TrainConfig:
    """Defaults ← recipe ← the command's ``defaults`` ← config file ← flags, each value checked.

    The recipe named by a flag or file wins over the model's. ``origins``, if given, is filled with where
    each setting that is not the config's own default came from (for ``--print-config``). A bad value
    from the file is named with the file.
    """
    from ..training.recipes import default_recipe, recipe_overrides

    source = f"config file {args.config}" if args.config else None
    scope = getattr(args, "config_scope", "train")
    file_values = _checked_file(read_config_file(args.config), source, scope) if args.config else {}
    flags = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if hasattr(args, f.name) and f.name not in _SKIP}
    named = flags.get("recipe") or file_values.get("recipe")
    recipe = named or default_recipe(args.model)
    file_label = str(args.config)
    recipe_values = recipe_overrides(recipe)
    recipe_kwargs = recipe_values.pop("model_kwargs", {})  # e.g. vgg2014-he's init; --model-arg wins
    layers = [(f"recipe {recipe}", recipe_values), ("fine-tuning default", defaults or {}),
              (file_label, {k: v for k, v in file_values.items() if k != "model_kwargs"}), ("flag", flags)]
    values: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for label, layer in layers:
        values.update(layer)
        seen.update(dict.fromkeys(layer, label))
    seen.setdefault("recipe", f"{args.model}'s default")
    values.update(model=args.model, recipe=recipe, progress=args.progress)
    values["model_kwargs"] = {**recipe_kwargs, **file_values.get("model_kwargs", {}), **_model_kwargs(args.model_arg)}
    if args.model_arg:
        seen["model_kwargs"] = "--model-arg"
    elif "model_kwargs" in file_values:
        seen["model_kwargs"] = file_label
    elif recipe_kwargs:
        seen["model_kwargs"] = f"recipe {recipe}"
    cfg = TrainConfig.from_dict(values)
    cfg.check({k: f"{k} in {source}" for k, v in seen.items() if source and v == file_label})
    if origins is not None:
        origins.update(seen)
    return cfg


def _checked_file(values: dict[str, Any], source: str | None, scope: str) -> dict[str, Any]:
    """The file's settings with their types checked (naming the file); MODEL is the command line's, and a
    setting of the other command (``weights`` for ``train``) is refused as its flag would be."""
    from ..training.config import coerce_settings, in_scope

    values = coerce_settings(values, source)
    for key in ("model", "progress"):
        values.pop(key, None)
    foreign = [k for k in values if k != "model_kwargs" and not in_scope(k, scope)]
    if foreign:
        raise CnnzooError(f"{foreign[0]} in {source} is a setting of `cnnzoo {_OTHER[scope]}`, not of "
                          f"`cnnzoo {scope}`; remove it or run `cnnzoo {_OTHER[scope]}`")
    return values


def print_config(args: argparse.Namespace, command: str, defaults: dict[str, Any] | None = None,
                 adjust: Any = None) -> int:
    """``--print-config``: the resolved settings as TOML, with where each came from; no data is read."""
    origins: dict[str, str] = {}
    cfg = resolve_config(args, defaults, origins)
    if adjust is not None:
        cfg = adjust(cfg)
    layers = " -> ".join(["recipe", *([f"{command}'s defaults"] if defaults else []), "--config file", "flags"])
    header = (f"cnnzoo {command} {args.model}: the resolved settings (recipe {cfg.recipe}: {origins['recipe']}).\n"
              f"Layered: {layers}; a comment says where a value came from.\n"
              f"Save as FILE.toml and run: cnnzoo {command} {args.model} --config FILE.toml")
    print(to_toml(cfg, origins, header, args.config_scope), end="")
    return 0


def check_weights(model: str, weights: str) -> None:
    """``--weights`` is a file that exists or a tag the model has: checked before any data is read."""
    import os

    from ..pretrained import resolve, unknown_tag_message
    from ..registry import model_info

    if os.path.exists(weights):
        return
    info = model_info(model)
    if resolve(info, weights) is not None:
        return
    if os.sep in weights or "." in weights:
        raise CnnzooError(f"weights file {weights!r} does not exist; give a cnnzoo checkpoint (.pt), a .safetensors "
                          "or .pth file, or a tag such as imagenet")
    raise CnnzooError(unknown_tag_message(info, weights))


def check_model_args(cfg: TrainConfig) -> None:
    """Build the model on the meta device (no memory, no data) so a bad --model-arg fails before any work."""
    if not cfg.model_kwargs:
        return
    import warnings

    import torch

    from ..errors import ModelArgumentError
    from ..registry import create_model

    try:
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "initializing zero-element tensors": the real build will say
            create_model(cfg.model, **cfg.model_kwargs)
    except ModelArgumentError:
        raise
    except Exception:  # noqa: BLE001 - anything else is the real build's to report, with the data's shape
        pass


def cmd_train(args: argparse.Namespace) -> int:
    from ..registry import model_info

    model_info(args.model)  # an unknown name fails here, before any data is read
    if args.print_config:
        return print_config(args, "train")
    cfg = resolve_config(args)
    check_model_args(cfg)
    from ..training.fit import fit

    fit(cfg, resume=args.resume, overwrite=args.overwrite)
    return 0
