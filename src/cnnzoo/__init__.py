"""cnnzoo: the classic convolutional networks, built by name, analysed layer by layer, trained and fine-tuned."""

from .analysis import analyze
from .base import AuxOutputs, FeatureInfo, ZooModel
from .errors import CnnzooError, InputSizeError, ModelArgumentError, UnknownModelError, WeightsError
from .registry import ModelInfo, Preprocessing, create_model, list_models, load, model_info
from .weights import load_weights

__version__ = "0.1.0"

__all__ = [
    "AuxOutputs", "CnnzooError", "FeatureInfo", "InputSizeError", "ModelArgumentError", "ModelInfo",
    "Preprocessing", "UnknownModelError", "WeightsError", "ZooModel", "analyze", "create_model", "list_models", "load",
    "load_weights", "model_info",
]
