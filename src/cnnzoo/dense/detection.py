"""Detectors of torchvision's framework on any zoo backbone (filled in below)."""

DETECTORS = ("fasterrcnn", "retinanet", "fcos")
