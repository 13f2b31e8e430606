"""torchvision's published ImageNet weights, read from the installed torchvision's weight enums.

URL, file name, categories, preprocessing and reference accuracy come from
``torchvision.models.get_model_weights``, never copied into a table that could drift; the files come
through :mod:`cnnzoo.hub` (``torch.hub``'s cache, SHA-256 checked, atomic, ``CNNZOO_WEIGHTS_MIRROR``).
Every cnnzoo twin keeps torchvision's key names, so no mapping table is needed.
"""

from __future__ import annotations

import functools
from typing import Any

from .spec import PretrainedWeights, Preprocessing

# torchvision's builders switch these on whenever they load its ImageNet weights (they were trained so).
BUILDER_KWARGS: dict[str, dict[str, Any]] = {
    "googlenet": {"transform_input": True},
    "inception_v3": {"transform_input": True},
}


@functools.cache
def torchvision_weights(name: str, tv_name: str) -> tuple[PretrainedWeights, ...]:
    """Every weights enum member of torchvision's ``tv_name``, as cnnzoo model ``name``'s tags."""
    import torchvision.models

    try:
        enum = torchvision.models.get_model_weights(tv_name)
    except (ValueError, KeyError):
        return ()
    out = []
    for w in enum:
        t = w.transforms()
        metrics = {k: v for k, v in w.meta.get("_metrics", {}).get("ImageNet-1K", {}).items() if v == v}  # no NaN
        prep = Preprocessing(resize=int(_first(t.resize_size)), crop=int(_first(t.crop_size)), mean=tuple(t.mean),
                             std=tuple(t.std), interpolation=t.interpolation.value)
        out.append(PretrainedWeights(
            model=name, tag=w.name, default=w is enum.DEFAULT, file_name=w.url.rsplit("/", 1)[-1], url=w.url,
            categories=tuple(w.meta.get("categories") or ()), preprocessing=prep, top1=metrics.get("acc@1"),
            top5=metrics.get("acc@5"), file_size_mb=w.meta.get("_file_size"),
            source=f"torchvision {torchvision.__version__} ({type(w).__name__}.{w.name})",
            model_kwargs=BUILDER_KWARGS.get(name, {})))
    return tuple(out)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, (list, tuple)) else value
