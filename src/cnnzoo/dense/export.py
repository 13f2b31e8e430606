"""ONNX export of a trained detector (torchvision's Faster R-CNN, RetinaNet or FCOS on a zoo backbone).

torchvision's detectors take a list of images and return one dict per image; the exported graph takes one
``1 x 3 x H x W`` float image in [0, 1] at the training size (fixed: the detectors' transform and anchors are
traced at it) and returns ``boxes`` (K x 4, x0 y0 x1 y1 in pixels), ``labels`` (K) and ``scores`` (K), where
the number of detections K is the outputs' dynamic axis. Everything runs inside the graph: normalisation,
the backbone and its feature pyramid, anchors, the heads, box decoding, score threshold and NMS.

It goes through the TorchScript-based exporter, the one torchvision's detection models are tested with
(opset 11 and later); the check reloads the file through ``onnx.checker`` and ONNX Runtime and compares its
detections with eager PyTorch's on the same images.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch
from torch import Tensor, nn

from ..runtime.export import OPSET, ExportError, _first_line, _quiet, ort_session, require_onnx

#: boxes may differ from eager PyTorch's by this much relative to their scale (at least 1), scores by this much
DETECTION_TOLERANCE = 1e-3
OUTPUTS = ("boxes", "labels", "scores")
#: at most this share of an image's detections may differ between the runtimes among tied scores
TIE_SHARE = 0.05


class DetectorGraph(nn.Module):
    """``det`` in eval mode as a function of one ``1 x 3 x H x W`` image in [0, 1]: its boxes, labels, scores."""

    def __init__(self, det: nn.Module) -> None:
        super().__init__()
        self.det = det.eval()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        found = self.det([x[0]])[0]
        return found["boxes"], found["labels"], found["scores"]


def detector_onnx(det: nn.Module, size: tuple[int, int]) -> bytes:
    """``det`` as a serialised ONNX model of a ``1 x 3 x size`` image; an :class:`ExportError` naming the
    detector and the exporter's first line where it cannot be exported."""
    require_onnx()
    graph = DetectorGraph(det).eval()
    example = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    axes = {name: {0: "detections"} for name in OUTPUTS}
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(graph, (example,), buffer, dynamo=False, opset_version=OPSET, input_names=["image"],
                              output_names=list(OUTPUTS), dynamic_axes=axes, do_constant_folding=True)
    except Exception as exc:  # the exporter's failures have no common type
        raise ExportError(f"{_name(det)} cannot be exported to ONNX ({_first_line(exc)})") from exc
    return buffer.getvalue()


def verify_detector(det: nn.Module, source: str | os.PathLike | bytes, images: list[Tensor]) -> dict[str, Any]:
    """Run the ONNX detector ``source`` (after ``onnx.checker``) and eager ``det`` on each ``3 x H x W`` image;
    raise an :class:`ExportError` where the number of detections differs or a detection of PyTorch's has no
    counterpart of the same label with its box and score within :data:`DETECTION_TOLERANCE` (relative to the
    boxes' scale, at least 1). Detections are matched, not compared in order: NMS and top-k may order equal
    scores either way, and so may keep another of several boxes whose scores tie (an untrained detector's
    hundred near-equal guesses): a detection with no counterpart is allowed where another of the same label ties
    its score, up to :data:`TIE_SHARE` of an image's detections. Returns ``images``, ``detections``, ``max_diff``
    (relative) and ``ties`` (detections swapped among tied scores)."""
    import onnx

    label = "the ONNX detector" if isinstance(source, bytes) else str(source)
    try:
        onnx.checker.check_model(source if isinstance(source, bytes) else str(source), full_check=True)
    except Exception as exc:
        raise ExportError(f"{label} fails onnx.checker ({_first_line(exc)})") from exc
    session = ort_session(source if isinstance(source, bytes) else str(source))
    det.eval()
    worst, count, ties = 0.0, 0, 0
    for k, image in enumerate(images):
        with torch.no_grad():
            want = det([image])[0]
        got = dict(zip(OUTPUTS, (torch.from_numpy(a) for a in session.run(None, {"image": image[None].numpy()}))))
        if len(got["boxes"]) != len(want["boxes"]):
            raise ExportError(f"{label} finds {len(got['boxes'])} objects in check image {k + 1}, eager PyTorch "
                              f"{len(want['boxes'])}; not written")
        diff, swapped = match_detections(want, got, f"in check image {k + 1}", label)
        worst, ties = max(worst, diff), ties + swapped
        count += len(want["boxes"])
    return {"images": len(images), "detections": count, "max_diff": worst, "ties": ties}


def match_detections(want: dict[str, Tensor], got: dict[str, Tensor], where: str, label: str) -> tuple[float, int]:
    """Pair each of PyTorch's detections ``want`` with one of ``got`` of the same label, box and score within
    :data:`DETECTION_TOLERANCE`; returns the largest gap and the detections swapped among tied scores (see
    :func:`verify_detector`), or raises an :class:`ExportError` naming the first one with no counterpart."""
    if not len(want["boxes"]):
        return 0.0, 0
    scale = max(1.0, want["boxes"].abs().max().item())
    gap = torch.maximum((want["boxes"][:, None] - got["boxes"][None].float()).abs().amax(-1) / scale,
                        (want["scores"][:, None] - got["scores"][None].float()).abs())
    gap[want["labels"][:, None] != got["labels"][None].long()] = float("inf")
    free = torch.ones(len(gap), dtype=torch.bool)
    worst, swapped = 0.0, 0
    for i in range(len(gap)):
        j = int(torch.where(free, gap[i], torch.inf).argmin())
        if gap[i, j] <= DETECTION_TOLERANCE:
            free[j] = False
            worst = max(worst, float(gap[i, j]))
            continue
        tied = ((want["scores"] - want["scores"][i]).abs() <= DETECTION_TOLERANCE) & (
            want["labels"] == want["labels"][i])
        if tied.sum() > 1 and swapped + 1 <= TIE_SHARE * len(gap):
            swapped += 1
            continue
        box = ", ".join(f"{v:.1f}" for v in want["boxes"][i].tolist())
        raise ExportError(f"{label} has no counterpart of PyTorch's detection ({box}), label "
                          f"{int(want['labels'][i])}, score {float(want['scores'][i]):.3f} {where}; not written")
    return worst, swapped


def _name(det: nn.Module) -> str:
    config = getattr(det, "config", {})
    return f"{config.get('kind', type(det).__name__)} on {config.get('backbone', '?')}"
