"""``cnnzoo visualize``: what a network learned (ZFNet, cs231n): filters, activations, top patches, occlusion,
embeddings."""

from __future__ import annotations

import argparse

from ..argtypes import csv, positive_int

KINDS = ("filters", "activations", "patches", "occlusion", "embedding")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("visualize", help="pictures of what a network learned: first-layer filters, activation maps, "
                                         "top-9 patches, occlusion, t-SNE of its codes",
                       description="filters: the first layer's filters (by tower). activations: a layer's maps for "
                                   "IMAGE. patches: the top-9 receptive-field patches of --units of --layer over "
                                   "--data's test split. occlusion: p(class) as a grey square slides over IMAGE. "
                                   "embedding: t-SNE of the penultimate codes of --limit test images, and nearest "
                                   "neighbours in code space against pixel space.")
    p.add_argument("kind", choices=KINDS, help="what to draw")
    p.add_argument("model", help="registered model name, or a weights file that records its model")
    p.add_argument("image", nargs="?", help="the image (activations, occlusion)")
    p.add_argument("--weights", help="a tag or a weights file (default: the model's pretrained weights; filters "
                                     "without any show the random initialisation)")
    p.add_argument("--layer", help="a module's dotted name (activations, patches; default: the last spatial stage)")
    p.add_argument("--units", type=csv(int), default=tuple(range(8)), metavar="A,B",
                   help="channels of --layer for patches (default 0-7)")
    p.add_argument("--data", default="fashion-mnist", help="dataset for patches and embedding (default fashion-mnist)")
    p.add_argument("--data-root")
    p.add_argument("--limit", type=positive_int, default=1000, help="test images in the embedding (default 1000)")
    p.add_argument("--window", type=positive_int, help="occlusion: the grey square's side (default: an eighth)")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.set_defaults(func=cmd_visualize)


def cmd_visualize(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..errors import CnnzooError

    out = Path(args.out)
    if out.suffix.lower() != ".png":
        raise CnnzooError(f"--out {args.out}: visualize writes a .png")
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.kind in ("activations", "occlusion") and not args.image:
        raise CnnzooError(f"visualize {args.kind} needs an image: cnnzoo visualize {args.kind} MODEL IMAGE --out F")
    image, what = {"filters": _filters, "activations": _activations, "patches": _patches, "occlusion": _occlusion,
                   "embedding": _embedding}[args.kind](args)
    image.save(out)
    print(f"{what} -> {out} ({image.width}x{image.height})")
    return 0


def _filters(args):
    from ..explain.inputs import load_model
    from ..explain.visualize import filters_image

    return filters_image(load_model(args.model, args.weights, "visualize", allow_random=True).model)


def _one_image(args):
    from pathlib import Path

    from ..errors import CnnzooError
    from ..explain.inputs import load_model, read_images

    loaded = load_model(args.model, args.weights, "visualize")
    files, x, errors, _ = read_images([Path(args.image)], loaded.prep, loaded.model.in_chans)
    if errors:
        raise CnnzooError(errors[0])
    return loaded, x


def _activations(args):
    from ..explain.methods import default_layer
    from ..explain.visualize import activations_image

    loaded, x = _one_image(args)
    layer = args.layer or default_layer(loaded.model, x.shape[1:])
    return activations_image(loaded.model, layer, x)


def _occlusion(args):
    import numpy as np
    import torch
    from matplotlib import colormaps

    from ..explain.methods import Explainer
    from ..explain.page import overlay
    from ..explain.inputs import denormalise

    loaded, x = _one_image(args)
    probs = torch.nn.Sequential(loaded.model, torch.nn.Softmax(dim=1)).eval()
    with torch.no_grad():
        p = probs(x)[0]
    t = int(p.argmax())
    ex = Explainer(probs, "occlusion", x.shape[1:], occlusion_window=args.window)
    drop = ex(x, [t])[0] / x.shape[1]  # Captum's mean drop over the windows covering a pixel, summed over channels
    left = np.clip(float(p[t]) - drop, 0, 1)  # p(class) with the square over each pixel (averaged over windows)
    img = denormalise(x, loaded.prep).numpy()[0]
    heat = colormaps["jet"](left / max(float(p[t]), 1e-6))[..., :3]
    from PIL import Image

    side = Image.fromarray((heat * 255).astype(np.uint8))
    both = Image.new("RGB", (2 * side.width + 4, side.height), (255, 255, 255))
    both.paste(overlay(img, np.zeros(img.shape[:2]), 0), (0, 0))
    both.paste(side, (side.width + 4, 0))
    return both, (f"p({loaded.names[t]}) as a {ex.window}-px grey square slides by {ex.stride} px "
                  f"(blue: the class is lost; unoccluded {float(p[t]):.3f})")


def _data(args):
    from ..explain.inputs import trained_with_data

    if not args.weights:
        from ..errors import CnnzooError

        raise CnnzooError(f"visualize {args.kind} needs --weights (a model trained on --data, such as a run's best.pt)")
    return trained_with_data(args.model, args.weights, args.data, args.data_root)


def _patches(args):
    from ..explain.methods import default_layer
    from ..explain.visualize import patches_grid

    data, model, pipeline = _data(args)
    images = data.test_images
    layer = args.layer or default_layer(model, tuple(pipeline(images[:1]).shape[1:]))
    return patches_grid(model, layer, images, pipeline, args.units, what=f"test images of {args.data}")


def _embedding(args):
    import numpy as np
    import torch
    from PIL import Image

    from ..explain.visualize import embedding_image, neighbours_image

    data, model, pipeline = _data(args)
    n = min(args.limit, len(data.test_images))
    images, labels = data.test_images[:n], data.test_labels[:n].numpy()
    with torch.no_grad():
        codes = torch.cat([model.forward_head(model.forward_features(pipeline(images[i:i + 500])), pre_logits=True)
                           for i in range(0, n, 500)]).flatten(1).numpy()
    thumbs = images.permute(0, 2, 3, 1).float().div(255).numpy()
    if thumbs.shape[-1] == 1:
        thumbs = np.repeat(thumbs, 3, -1)
    tsne = embedding_image(codes, thumbs, labels)
    near = neighbours_image(codes, images.flatten(1).float().numpy(), thumbs, queries=range(0, min(n, 80), 10))
    both = Image.new("RGB", (tsne.width, tsne.height + near.height + 8), (255, 255, 255))
    both.paste(tsne, (0, 0))
    both.paste(near, (0, tsne.height + 8))
    return both, (f"t-SNE of {n} penultimate codes ({codes.shape[1]}-d) of {args.data}, coloured by class; below, "
                  "per row: an image, its 8 nearest in code space, then its 8 nearest in pixel space")
