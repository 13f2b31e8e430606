"""Attribution maps for any zoo model, through Captum and pytorch-grad-cam.

Every method gives one ``H x W`` float32 map per image at the input's resolution:

- ``gradcam``, ``gradcam++``: pytorch-grad-cam's ``GradCAM`` / ``GradCAMPlusPlus`` at the target layer
  (Selvaraju et al. 2017, https://arxiv.org/abs/1610.02391; Chattopadhay et al. 2018,
  https://arxiv.org/abs/1710.11063), as that library scales them: ReLU, min-max to [0, 1], resized;
- ``guided-gradcam``, ``saliency``, ``guided-backprop``, ``deconvnet``: Captum's gradients (Simonyan et al.
  2013, Springenberg et al. 2014, Zeiler and Fergus 2013), the largest absolute value over colour channels;
- ``occlusion`` (Zeiler and Fergus 2013, figure 7) and ``integrated-gradients`` (Sundararajan et al. 2017):
  Captum's, summed over colour channels, so a positive value is evidence for the target class.

The model is never changed: each :class:`Explainer` works on a deep copy in eval mode whose parameters
need no gradient (the backward pass computes the activations' gradients only), whose in-place
activations are out of place, and whose ReLU modules that a forward pass calls more than once are split
into one module per call: Captum's guided backprop and deconvnet hook ``nn.ReLU`` modules and break on
in-place and reused ones (https://github.com/pytorch/captum/issues/973). They see no other activation, so
each ``nn.ReLU6`` (MobileNet-v2, EfficientNet-Lite) becomes the equal ``ReLU`` then clamp at 6, whose ReLU
they do see; without it their maps on those networks would be plain gradients.
"""

from __future__ import annotations

import copy
import difflib
import warnings
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import CnnzooError

METHODS = ("gradcam", "gradcam++", "guided-gradcam", "saliency", "guided-backprop", "deconvnet", "occlusion",
           "integrated-gradients")
#: the methods that read a layer; the others attribute to the input pixels only
LAYER_METHODS = ("gradcam", "gradcam++", "guided-gradcam")
EXTRA = "explain needs Captum and pytorch-grad-cam: pip install 'cnnzoo[explain]'"


def require_libraries() -> None:
    """Raise the one-line install hint unless both libraries import."""
    try:
        import captum.attr  # noqa: F401
        import pytorch_grad_cam  # noqa: F401
    except ImportError:
        raise CnnzooError(EXTRA) from None


def _label(model: nn.Module) -> str:
    return getattr(model, "model_name", None) or type(model).__name__


def resolve_layer(model: nn.Module, name: str) -> nn.Module:
    """The module ``name`` (a dotted name such as ``layer4`` or ``features.28``), or a one-line error that
    lists the model's stages and the closest names."""
    try:
        return model.get_submodule(name)
    except AttributeError:
        names = [n for n, _ in model.named_modules() if n]
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        stages = ", ".join(f.module for f in getattr(model, "feature_info", ()))
        raise CnnzooError(f"{_label(model)} has no layer {name!r}{hint}; try a stage ({stages}) or any module's "
                          f"dotted name (`cnnzoo summary {_label(model)} --depth 9` lists them)") from None


def stage_shapes(model: nn.Module, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Each ``feature_info`` stage's output shape (one sample) for an input of ``input_shape`` (C, H, W)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def record(name: str) -> Any:
        def hook(module: nn.Module, inputs: Any, output: Tensor) -> None:
            shapes.setdefault(name, tuple(output.shape[1:]))
        return hook

    handles = [model.get_submodule(f.module).register_forward_hook(record(f.module))
               for f in getattr(model, "feature_info", ())]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=_device(model)))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def default_layer(model: nn.Module, input_shape: Sequence[int]) -> str:
    """The deepest ``feature_info`` stage whose output is a map larger than 1x1 at this input (else the deepest
    map): Grad-CAM's usual choice, the last convolutional stage."""
    shapes = stage_shapes(model, input_shape)
    maps = [name for name, s in shapes.items() if len(s) == 3]
    if not maps:
        raise CnnzooError(f"{_label(model)} has no spatial stage in its feature_info; pass --layer NAME")
    spatial = [name for name in maps if shapes[name][1] * shapes[name][2] > 1]
    return (spatial or maps)[-1]


def _device(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


class _PerCall(nn.Module):
    """A ReLU module that a forward pass calls ``n`` times, as ``n`` modules: call ``i`` uses ``relus[i % n]``."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.relus = nn.ModuleList(nn.ReLU() for _ in range(n))
        self.calls = 0

    def forward(self, x: Tensor) -> Tensor:
        relu = self.relus[self.calls % len(self.relus)]
        self.calls += 1
        return relu(x)


def attribution_copy(model: nn.Module, input_shape: Sequence[int]) -> nn.Module:
    """A deep copy of ``model`` that Captum's and pytorch-grad-cam's hooks work on (see the module docstring)."""
    work = copy.deepcopy(model).eval()
    for p in work.parameters():
        p.requires_grad_(False)
    for name, m in list(work.named_modules(remove_duplicate=False)):
        if type(m) is nn.ReLU6:
            work.set_submodule(name, nn.Sequential(nn.ReLU(), nn.Hardtanh(0.0, 6.0)))
    for m in work.modules():
        if getattr(m, "inplace", False) is True:
            m.inplace = False
    calls: dict[int, int] = {}
    handles = [m.register_forward_hook(lambda mod, i, o: calls.__setitem__(id(mod), calls.get(id(mod), 0) + 1))
               for m in work.modules() if type(m) is nn.ReLU]
    try:
        with torch.no_grad():
            work(torch.zeros(1, *input_shape, device=_device(work)))
    finally:
        for h in handles:
            h.remove()
    split: dict[int, _PerCall] = {}
    for name, m in list(work.named_modules(remove_duplicate=False)):
        if type(m) is nn.ReLU and calls.get(id(m), 0) > 1:
            work.set_submodule(name, split.setdefault(id(m), _PerCall(calls[id(m)])))
    if split:
        def reset(module: nn.Module, args: Any) -> None:
            for s in split.values():
                s.calls = 0
        work.register_forward_pre_hook(reset)
    return work


def _occlusion_window(size: int) -> tuple[int, int]:
    """Window and stride of the occluding square: about an eighth of the image, moved by half of it."""
    window = max(2, round(size / 8))
    return window, max(1, window // 2)


class Explainer:
    """One method on one model: ``explainer(x, targets)`` gives ``N x H x W`` float32 maps.

    ``layer`` is a dotted module name for the CAM methods (default: :func:`default_layer`). Build it once
    and call it batch after batch; nothing accumulates between calls.
    """

    def __init__(self, model: nn.Module, method: str, input_shape: Sequence[int], layer: str | None = None,
                 occlusion_window: int | None = None, ig_steps: int = 32) -> None:
        if method not in METHODS:
            raise CnnzooError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
        require_libraries()
        self.method = method
        self.input_shape = tuple(input_shape)
        if layer is not None:
            resolve_layer(model, layer)
        self.layer = layer or (default_layer(model, input_shape) if method in LAYER_METHODS else None)
        self.model = attribution_copy(model, input_shape)
        size = min(input_shape[-2:])
        window, stride = _occlusion_window(size)
        if occlusion_window is not None:
            window, stride = occlusion_window, max(1, occlusion_window // 2)
        self.window, self.stride = window, stride
        self.ig_steps = ig_steps

    def _layer_module(self) -> nn.Module:
        return resolve_layer(self.model, self.layer)

    @torch.no_grad()
    def predict(self, x: Tensor) -> Tensor:
        return self.model(x)

    def __call__(self, x: Tensor, targets: Sequence[int] | Tensor) -> np.ndarray:
        targets = [int(t) for t in targets]
        x = x.to(_device(self.model))
        with warnings.catch_warnings():  # Captum's notes on its own hooks, once per call
            warnings.filterwarnings("ignore", message=".*(backward hooks|require gradients).*")
            if self.method in ("gradcam", "gradcam++"):
                return self._cam(x, targets)
            return self._captum(x, targets)

    def _cam(self, x: Tensor, targets: list[int]) -> np.ndarray:
        from pytorch_grad_cam import GradCAM, GradCAMPlusPlus
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        kind = GradCAM if self.method == "gradcam" else GradCAMPlusPlus
        # The input needs a gradient because the copy's parameters do not: without either there is no graph.
        x = x.detach().requires_grad_(True)
        with kind(model=self.model, target_layers=[self._layer_module()]) as cam:
            maps = cam(x, targets=[ClassifierOutputTarget(t) for t in targets])
            cam.outputs = None  # the library keeps the last batch's outputs and with them its graph
        return maps.astype(np.float32)

    def _captum(self, x: Tensor, targets: list[int]) -> np.ndarray:
        from captum import attr

        m, t = self.model, torch.tensor(targets, device=x.device)
        if self.method == "guided-gradcam":
            a = attr.GuidedGradCam(m, self._layer_module()).attribute(x, target=t, interpolate_mode="bilinear")
        elif self.method == "saliency":
            a = attr.Saliency(m).attribute(x, target=t)
        elif self.method == "guided-backprop":
            a = attr.GuidedBackprop(m).attribute(x, target=t)
        elif self.method == "deconvnet":
            a = attr.Deconvolution(m).attribute(x, target=t)
        elif self.method == "occlusion":
            c = x.shape[1]
            windows = (-(-(x.shape[2] - self.window) // self.stride) + 1) * (-(-(x.shape[3] - self.window) // self.stride) + 1)
            with torch.no_grad():
                a = attr.Occlusion(m).attribute(x, target=t, sliding_window_shapes=(c, self.window, self.window),
                                                strides=(c, self.stride, self.stride), baselines=0.0,
                                                perturbations_per_eval=max(1, min(windows, 256 // len(x))))
        else:
            a = attr.IntegratedGradients(m).attribute(x, target=t, baselines=0.0, n_steps=self.ig_steps,
                                                      internal_batch_size=max(len(x), 32))
        a = a.detach().float()
        maps = a.sum(1) if self.method in ("occlusion", "integrated-gradients") else a.abs().amax(1)
        return maps.cpu().numpy().astype(np.float32)


def explain(model: nn.Module, images: Tensor, method: str = "gradcam", targets: Sequence[int] | None = None,
            layer: str | None = None, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """``method``'s maps of preprocessed ``images`` (``N x C x H x W``) for ``targets`` (default: each image's
    top class), in batches. Returns the maps (``N x H x W``) and the targets explained."""
    ex = Explainer(model, method, tuple(images.shape[1:]), layer)
    maps, chosen = [], []
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        t = ex.predict(x.to(_device(ex.model))).argmax(1).tolist() if targets is None else list(targets[i:i + batch_size])
        maps.append(ex(x, t))
        chosen += t
    return np.concatenate(maps), np.asarray(chosen)
