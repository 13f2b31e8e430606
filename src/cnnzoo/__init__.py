"""cnnzoo: the classic convolutional networks, built by name, analysed layer by layer, trained and fine-tuned."""

import importlib
import pkgutil
from typing import Any

from .errors import CnnzooError, InputSizeError, ModelArgumentError, UnknownModelError, WeightsError

__version__ = "0.1.0"

# The public names and their modules, imported on first use, so that `import cnnzoo` (and a command line
# that needs no model, such as `cnnzoo --help`) does not pay for torch.
_LAZY = {
    "analyze": "analysis", "AuxOutputs": "base", "FeatureInfo": "base", "ZooModel": "base", "ModelInfo": "registry",
    "Preprocessing": "registry", "create_model": "registry", "list_models": "registry", "load": "registry",
    "model_info": "registry", "load_weights": "registry", "create_segmenter": "dense.segmentation",
    "create_detector": "dense.detection",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in {m.name for m in pkgutil.iter_modules(__path__)}:  # cnnzoo.analysis etc. without an import
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AuxOutputs", "CnnzooError", "FeatureInfo", "InputSizeError", "ModelArgumentError", "ModelInfo",
    "Preprocessing", "UnknownModelError", "WeightsError", "ZooModel", "analyze", "create_detector", "create_model",
    "create_segmenter", "list_models", "load",
    "load_weights", "model_info",
]
