"""``cnnzoo export``: a model as ONNX, TorchScript or a ``torch.export`` program, verified before it is written."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import torch

from ..errors import CnnzooError
from ..runtime.export import FORMATS, TOLERANCE
from ..argtypes import positive_int

_SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt", "exported-program": ".pt2"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model to ONNX, TorchScript or torch.export, checked against PyTorch",
                       description="Export MODEL with --weights to --out. The file is checked before the command "
                                   "succeeds: onnx.checker and ONNX Runtime (or the reloaded TorchScript / "
                                   "exported program) against eager PyTorch on a random batch of another size "
                                   f"than the export's; a max abs diff above {TOLERANCE:g} times the logits' "
                                   "scale fails, and nothing is written.")
    p.add_argument("model", help="registered model name (see `cnnzoo list`)")
    p.add_argument("--weights", help="a registered tag such as 'imagenet', or a weights file (default: the "
                                     "model's pretrained weights where it has some, else its initial weights)")
    p.add_argument("--format", choices=FORMATS, default="onnx", help="default onnx")
    p.add_argument("--input", type=input_shape, metavar="CxHxW",
                   help="input shape, e.g. 3x160x160 or 160 (default: the model's own, e.g. 3x224x224)")
    p.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
                   help="a symbolic batch axis, so the file runs any batch size (default on)")
    p.add_argument("--batch", type=positive_int, default=1,
                   help="the fixed batch size with --no-dynamic-batch (default 1)")
    p.add_argument("--out", required=True, help="the file to write, e.g. resnet18.onnx")
    p.set_defaults(func=cmd_export)


def input_shape(text: str) -> tuple[int, ...]:
    """An argparse type: ``CxHxW``, ``HxW`` or ``S`` (square), each side a whole number of at least 1."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not CxHxW (e.g. 3x224x224), HxW or one size") from None
    if len(dims) not in (1, 2, 3) or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not CxHxW (e.g. 3x224x224), HxW or one size")
    return dims



def cmd_export(args: argparse.Namespace) -> int:
    from ..runtime.export import export, load_exported, verify
    from ..registry import create_model, create_model_with_weights, model_info

    info = model_info(args.model)
    out = Path(args.out)
    if out.is_dir():
        raise CnnzooError(f"--out {args.out} is a folder; give a file name such as {args.model}{_SUFFIXES[args.format]}")
    from ..weights import make_parents

    make_parents(out)  # before any work: a file in the way is said now
    weights = args.weights or (info.pretrained[0] if info.pretrained else None)
    model = create_model(args.model) if weights is None else create_model_with_weights(args.model, weights, "export")
    model.eval()
    shape = _full_shape(args.input, info.input_size, model.in_chans)
    batch = 2 if args.dynamic_batch else args.batch
    example = torch.randn(batch, *shape)
    model.check_input(example)  # a too-small or wrong-channel input is the user's one-line error
    if weights is None:
        warnings.warn(f"{args.model} has no pretrained weights and no --weights was given: exporting its random "
                      "initial weights", stacklevel=1)

    tmp = out.with_name(f".{out.name}.unverified{out.suffix}")
    try:
        export(model, example, tmp, args.format, dynamic_batch=args.dynamic_batch)
        run = load_exported(tmp, args.format)
        check_batch = 3 if args.dynamic_batch else batch
        diff, scale = verify(model, run, shape, batch=check_batch)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    size_mb = out.stat().st_size / 1e6
    axis = "dynamic batch" if args.dynamic_batch else f"batch fixed at {batch}"
    print(f"{args.model} ({weights or 'initial weights'}) -> {out}: {args.format}, {size_mb:.1f} MB, "
          f"input N x {' x '.join(map(str, shape))} ({axis})")
    print(f"verified: {_checker_text(args.format)} vs eager PyTorch on a batch of {check_batch}: max abs diff "
          f"{diff:.2e} (tolerance {TOLERANCE:g} x logit scale {scale:.3g})")
    return 0


def _full_shape(given: tuple[int, ...] | None, default: tuple[int, int, int], in_chans: int) -> tuple[int, int, int]:
    if given is None:
        return (in_chans, *default[1:])
    if len(given) == 1:
        return (in_chans, given[0], given[0])
    if len(given) == 2:
        return (in_chans, *given)
    if given[0] != in_chans:
        raise CnnzooError(f"--input {'x'.join(map(str, given))} has {given[0]} channel{'s' * (given[0] != 1)} "
                          f"but the model takes {in_chans}; give {in_chans}x{given[1]}x{given[2]}")
    return given  # type: ignore[return-value]


def _checker_text(fmt: str) -> str:
    if fmt == "onnx":
        import onnxruntime

        return f"onnx.checker passed; ONNX Runtime {onnxruntime.__version__}"
    return "reloaded TorchScript archive" if fmt == "torchscript" else "reloaded torch.export program"
