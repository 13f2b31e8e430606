"""``cnnzoo weights [MODEL]``: the pretrained weights each model loads by name, and whether they are here."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("weights", help="pretrained weights by name: tags, files, sizes, cached or not, top-1",
                       description="The weights `create_model(NAME, weights=TAG)` and `--weights TAG` load. "
                                   "torchvision's files are downloaded into torch.hub's cache on first use "
                                   "(CNNZOO_WEIGHTS_MIRROR: a mirror's base URL); timm's into the Hugging Face "
                                   "cache (HF_HUB_OFFLINE=1; HF_ENDPOINT for a hub mirror, or "
                                   "CNNZOO_WEIGHTS_MIRROR/<repo>/<file>).")
    p.add_argument("model", nargs="?", help="a model, or an fnmatch pattern such as 'resnet*' (default: all)")
    p.set_defaults(func=cmd_weights)


def cmd_weights(args: argparse.Namespace) -> int:
    from ..errors import CnnzooError
    from ..hub import checkpoint_dir
    from ..pretrained import available
    from ..pretrained.huggingface import cache_dir
    from ..registry import list_models, model_info

    pattern = args.model
    names = [pattern] if pattern and not any(c in pattern for c in "*?[") else list_models(pattern)
    rows = [w for n in names for w in available(model_info(n))]
    if not rows:
        what = f"{pattern!r}" if pattern else "any model"
        raise CnnzooError(f"no pretrained weights are registered for {what}; `cnnzoo weights` lists those that are")
    width = max(len(w.model) for w in rows)
    print(f"{'model':<{width}}  {'tag':<24} {'source':<11} {'MB':>6}  {'cached':<6}  {'top-1':>6}  file")
    for w in rows:
        here = w.cached()
        size = w.file_size_mb or (here.stat().st_size / 1e6 if here else None)
        tag = w.tag + (" *" if w.default else "")
        print(f"{w.model:<{width}}  {tag:<24} {w.source.split()[0]:<11} {f'{size:.1f}' if size else '—':>6}  "
              f"{'yes' if here else 'no':<6}  "
              f"{f'{w.top1:.2f}' if w.top1 else '—':>6}  {w.file_name}")
    print("* the default, also loaded by `imagenet` and `DEFAULT`; top-1: ImageNet-1k, as published")
    sources = sorted({w.source.split(" (")[0] for w in rows})
    print(f"from: {'; '.join(sources)}")
    print(f"torchvision's files: {checkpoint_dir()} (mirror: set CNNZOO_WEIGHTS_MIRROR to a base URL)")
    if any(w.source.startswith("timm") for w in rows):
        print(f"timm's files: the Hugging Face cache {cache_dir()} (offline: HF_HUB_OFFLINE=1; "
              "mirror: HF_ENDPOINT, or CNNZOO_WEIGHTS_MIRROR/<repo id>/model.safetensors)")
    return 0
