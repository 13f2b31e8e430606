"""What a network looks at, and what it learned: attribution maps, filters, top patches, embeddings.

The attribution methods are Captum's (https://captum.ai) and pytorch-grad-cam's
(https://github.com/jacobgil/pytorch-grad-cam); this package adds what they leave to the user: the
target layer chosen through the model contract (:mod:`cnnzoo.base`), a private copy of the model on
which every zoo architecture works with them (out-of-place ReLUs, one ReLU module per call), the
weights' preprocessing, batching, and faithfulness numbers (:mod:`.faithfulness`).

Both libraries are the optional extra ``explain``: ``pip install 'cnnzoo[explain]'``.
"""

from __future__ import annotations

from .methods import METHODS, Explainer, default_layer, explain, resolve_layer

__all__ = ["METHODS", "Explainer", "default_layer", "explain", "resolve_layer"]
