"""``cnnzoo explain``: what a prediction rests on, per image and method (Captum, pytorch-grad-cam)."""

from __future__ import annotations

import argparse

from ..argtypes import csv, positive_int

_METHODS = ("gradcam", "gradcam++", "guided-gradcam", "saliency", "guided-backprop", "deconvnet", "occlusion",
            "integrated-gradients")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="attribution maps (Grad-CAM, occlusion, ...) of image files, as PNG, .npy "
                                       "and one HTML page",
                       description="For each image and method: an overlay (PNG), the map at the input's resolution "
                                   "(.npy), the top-k classes, and DIR/index.html with them all.")
    p.add_argument("model", help="registered model name, or a weights file that records its model (a run's best.pt)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders (a folder's other files are "
                                                               "skipped and counted)")
    p.add_argument("--weights", help="a tag such as imagenet, or a weights file (default: the model's pretrained "
                                     "weights)")
    p.add_argument("--method", type=csv(str), default=("gradcam",), metavar="M[,M...]",
                   help=f"one or more of {', '.join(_METHODS)} (default gradcam)")
    p.add_argument("--target", help="the class to explain, by index or name (default: each image's top class)")
    p.add_argument("--layer", help="the layer of the CAM methods, a module's dotted name (default: the last "
                                   "spatial stage of the model's feature_info)")
    p.add_argument("--out", required=True, help="folder for the pictures, maps and index.html")
    p.add_argument("--topk", type=positive_int, default=5, help="classes shown per image (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="images per pass (default 16)")
    p.add_argument("--compare-methods", action="store_true",
                   help="also print, per method, the randomisation sanity check (Adebayo et al. 2018) and the "
                        "deletion/insertion AUC (Petsiuk et al. 2018) over the images")
    p.set_defaults(func=cmd_explain)


def cmd_explain(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    import numpy as np
    import torch

    from ..errors import CnnzooError
    from ..explain.inputs import denormalise, gather_images, load_model, parse_target, read_images
    from ..explain.methods import METHODS, Explainer, require_libraries
    from ..explain.page import Card, overlay, png_bytes, write_page

    unknown = [m for m in args.method if m not in METHODS]
    if unknown:
        raise CnnzooError(f"unknown method {unknown[0]!r}; choose from {', '.join(METHODS)}")
    require_libraries()
    loaded = load_model(args.model, args.weights, "explain")
    model, names = loaded.model, loaded.names
    target = parse_target(args.target, names)
    files, in_folders, other = gather_images(args.images)
    files, images, errors, unreadable = read_images(files, loaded.prep, model.in_chans, in_folders)
    if not files and len(errors) == 1 and not (other or unreadable):
        raise CnnzooError(errors[0])  # one image given, and it failed: its own line is the whole story
    for e in errors:
        print(f"cnnzoo: error: {e}", file=sys.stderr)
    if other or unreadable:
        print(f"skipped {other + unreadable} file(s) of the folder(s): {other} not image files, {unreadable} "
              "unreadable images", file=sys.stderr)
    if not files:
        raise CnnzooError("none of the images could be read")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    shape = tuple(images.shape[1:])
    with torch.no_grad():
        probs = torch.cat([model(images[i:i + args.batch_size]).softmax(1)
                           for i in range(0, len(images), args.batch_size)])
    targets = [target if target is not None else int(p.argmax()) for p in probs]
    shown = denormalise(images, loaded.prep).numpy()
    stems = _unique_stems(files)
    cards = []
    for f, stem, p, t, img in zip(files, stems, probs, targets, shown):
        top = p.topk(min(args.topk, len(names)))
        cards.append(Card(str(f), png_bytes(overlay(img, np.zeros(img.shape[:2]), alpha=0)),
                          [(names[i], float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist())],
                          f"{names[t]} ({100 * float(p[t]):.2f}%)"))
        print(f"{f}: " + ", ".join(f"{names[i]} {100 * float(v):.1f}%" for v, i in zip(top.values[:3], top.indices[:3])))
    all_maps: dict[str, np.ndarray] = {}
    for method in args.method:
        ex = Explainer(model, method, shape, args.layer)
        maps = np.concatenate([ex(images[i:i + args.batch_size], targets[i:i + args.batch_size])
                               for i in range(0, len(images), args.batch_size)])
        all_maps[method] = maps
        for card, stem, img, m in zip(cards, stems, shown, maps):
            name = method.replace("+", "p")
            np.save(out / f"{stem}.{name}.npy", m)
            png = png_bytes(overlay(img, m))
            (out / f"{stem}.{name}.png").write_bytes(png)
            card.overlays[method + (f" at {ex.layer}" if ex.layer else "")] = png
        del ex
    notes = _compare(model, images, targets, all_maps, args) if args.compare_methods else ""
    write_page(out / "index.html", f"cnnzoo explain: {getattr(model, 'model_name', args.model)}",
               f"weights: {loaded.weights}; methods: {', '.join(args.method)}", cards, notes)
    print(f"{len(files)} image(s) x {len(args.method)} method(s) -> {out}/ (index.html, .png, .npy)")
    return 2 if errors else 0


def _unique_stems(files) -> list[str]:
    seen: dict[str, int] = {}
    stems = []
    for f in files:
        n = seen.get(f.stem, 0)
        seen[f.stem] = n + 1
        stems.append(f.stem if n == 0 else f"{f.stem}-{n}")
    return stems


def _compare(model, images, targets, all_maps, args) -> str:
    from ..explain.faithfulness import FLAG_AT, deletion_insertion, flagged, randomisation_check

    lines = [f"{'method':<22} {'deletion AUC':>12} {'insertion AUC':>13}   rank correlation after randomising "
             f"(top-down, cumulative)"]
    for method, maps in all_maps.items():
        d, i = deletion_insertion(model, images, maps, targets)
        rows = randomisation_check(model, images, method, targets, args.layer, maps=maps)
        cells = ", ".join(f"{r.stage} {r.correlation:+.2f}" for r in rows)
        flag = f"  <- barely changes (>= {FLAG_AT} with head and top stage random): not explaining this model" \
            if flagged(rows) else ""
        lines.append(f"{method:<22} {d:>12.3f} {i:>13.3f}   {cells}{flag}")
    lines.append("deletion: lower is better; insertion: higher is better (Petsiuk et al. 2018). A faithful map "
                 "decorrelates as the weights are randomised (Adebayo et al. 2018).")
    text = "\n".join(lines)
    print(text)
    return text
