"""timm's ImageNet weights on the Hugging Face hub, for the cnnzoo models that build timm's architecture.

Each row of :data:`TAGS` is one published checkpoint (``timm/<architecture>.<tag>``, a ``model.safetensors``
file) with the preprocessing timm publishes for it (``timm.models.get_pretrained_cfg``: input size, crop
fraction, interpolation, mean/std); :data:`ARCHITECTURES` says how each timm architecture maps onto
cnnzoo's model: the key table of :mod:`.mapping`, the model arguments that build timm's variant, and a
note for ``cnnzoo info``. timm itself is not needed at run time: a test checks this table against the
installed timm's metadata, and a parity test per architecture checks the mapping (random weights, outputs
within 1e-5). torchvision's own files, which timm republishes as ``tv_in1k``/``tv2_in1k``, are left to the
torchvision source. The top-1/top-5 figures are timm's own evaluation of each file (its repository's
``results/results-imagenet.csv``), copied into :data:`ACCURACY`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import WeightsError
from .spec import IMAGENET_MEAN, IMAGENET_STD, PretrainedWeights, Preprocessing, imagenet_categories

INCEPTION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
IMAGENET = (IMAGENET_MEAN, IMAGENET_STD)
FILE_NAME = "model.safetensors"


@dataclass(frozen=True)
class Architecture:
    """How one timm architecture becomes a cnnzoo model: key table, model arguments, classifier, note."""

    mapping: str
    classifier: str
    notes: str
    model_kwargs: dict[str, Any] = field(default_factory=dict)


_TF_PORT = ("timm's port of Google's TF-slim checkpoint: the same layers, key names and BN epsilon (1e-3) as "
            "cnnzoo's; TF's 1001st logit (class 0, background) is dropped in timm's file; inputs in [-1, 1]")
_RESNET = "timm's ResNet keeps torchvision's layout and key names: loaded unchanged"

ARCHITECTURES: dict[str, Architecture] = {
    "inception_v4": Architecture("identity", "last_linear", _TF_PORT),
    "inception_resnet_v2": Architecture("identity", "classif", _TF_PORT),
    "mobilenetv1_100": Architecture(
        "timm_mobilenetv1", "fc", "timm's MobileNet-v1 clips activations at 6 (ReLU6, as TF-slim's): built with "
        "act='relu6'; keys renamed (conv_stem, blocks.S.B -> features.N)", {"act": "relu6"}),
    **{f"resnetv2_{d}": Architecture(
        "timm_resnetv2", "fc", "timm's ResNetV2 applies the stem's BN-ReLU after the max-pool, in the first unit: "
        "built with stem_norm=False; keys renamed (stages.S.blocks.B -> layerS+1.B), 1x1-conv head into fc",
        {"stem_norm": False}) for d in (18, 34, 50, 101)},
    **{a: Architecture("identity", "fc", _RESNET) for a in (
        "resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "resnext101_32x8d",
        "wide_resnet50_2")},
    "densenet121": Architecture("identity", "classifier", "timm's DenseNet keeps torchvision's current key names"),
    "inception_v3": Architecture(
        "identity", "fc", "timm's Inception-v3 keeps torchvision's key names; its files have no auxiliary "
        "classifier: built with aux_logits=False, and without torchvision's transform_input",
        {"aux_logits": False}),
}

# (cnnzoo model, timm name, input size, crop fraction, interpolation, (mean, std), licence), as timm 1.0
# publishes them; a model's first row is its default where torchvision has none.
TAGS: tuple[tuple[str, str, int, float, str, tuple, str], ...] = (
    ("inception_v4", "inception_v4.tf_in1k", 299, 0.875, "bicubic", INCEPTION, "apache-2.0"),
    ("inception_resnet_v2", "inception_resnet_v2.tf_in1k", 299, 0.8975, "bicubic", INCEPTION, "apache-2.0"),
    ("inception_resnet_v2", "inception_resnet_v2.tf_ens_adv_in1k", 299, 0.8975, "bicubic", INCEPTION, "apache-2.0"),
    ("mobilenet_v1", "mobilenetv1_100.ra4_e3600_r224_in1k", 224, 0.875, "bicubic", INCEPTION, "apache-2.0"),
    ("preact_resnet18", "resnetv2_18.ra4_e3600_r224_in1k", 224, 0.9, "bicubic", INCEPTION, "apache-2.0"),
    ("preact_resnet34", "resnetv2_34.ra4_e3600_r224_in1k", 224, 0.9, "bicubic", INCEPTION, "apache-2.0"),
    ("preact_resnet50", "resnetv2_50.a1h_in1k", 224, 0.95, "bicubic", INCEPTION, "apache-2.0"),
    ("preact_resnet101", "resnetv2_101.a1h_in1k", 224, 0.95, "bicubic", INCEPTION, "apache-2.0"),
    ("resnet18", "resnet18.a1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet18", "resnet18.a2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet18", "resnet18.a3_in1k", 160, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet18", "resnet18.fb_ssl_yfcc100m_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnet18", "resnet18.fb_swsl_ig1b_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnet18", "resnet18.gluon_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet34", "resnet34.a1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet34", "resnet34.a2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet34", "resnet34.a3_in1k", 160, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet34", "resnet34.bt_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet34", "resnet34.gluon_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet34", "resnet34.ra4_e3600_r224_in1k", 224, 0.9, "bicubic", INCEPTION, "apache-2.0"),
    ("resnet50", "resnet50.a1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.a1h_in1k", 176, 0.9, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.a2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.a3_in1k", 160, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.am_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.b1k_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.b2k_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.bt_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.c1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.c2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.d_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.fb_ssl_yfcc100m_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnet50", "resnet50.fb_swsl_ig1b_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnet50", "resnet50.gluon_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.ra_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet50", "resnet50.ram_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet101", "resnet101.a1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet101", "resnet101.a1h_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet101", "resnet101.a2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet101", "resnet101.a3_in1k", 160, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet101", "resnet101.gluon_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet152", "resnet152.a1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet152", "resnet152.a1h_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet152", "resnet152.a2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet152", "resnet152.a3_in1k", 160, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnet152", "resnet152.gluon_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext50_32x4d", "resnext50_32x4d.a1_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext50_32x4d", "resnext50_32x4d.a1h_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext50_32x4d", "resnext50_32x4d.a2_in1k", 224, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext50_32x4d", "resnext50_32x4d.a3_in1k", 160, 0.95, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext50_32x4d", "resnext50_32x4d.fb_ssl_yfcc100m_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnext50_32x4d", "resnext50_32x4d.fb_swsl_ig1b_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnext50_32x4d", "resnext50_32x4d.gluon_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext50_32x4d", "resnext50_32x4d.ra_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("resnext101_32x8d", "resnext101_32x8d.fb_ssl_yfcc100m_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnext101_32x8d", "resnext101_32x8d.fb_swsl_ig1b_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("resnext101_32x8d", "resnext101_32x8d.fb_wsl_ig1b_ft_in1k", 224, 0.875, "bilinear", IMAGENET, "cc-by-nc-4.0"),
    ("wide_resnet50_2", "wide_resnet50_2.racm_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("densenet121", "densenet121.ra_in1k", 224, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("inception_v3", "inception_v3.gluon_in1k", 299, 0.875, "bicubic", IMAGENET, "apache-2.0"),
    ("inception_v3", "inception_v3.tf_adv_in1k", 299, 0.875, "bicubic", INCEPTION, "apache-2.0"),
    ("inception_v3", "inception_v3.tf_in1k", 299, 0.875, "bicubic", INCEPTION, "apache-2.0"),
)

# timm's own evaluation of each file on the ImageNet-1k validation set at the tag's input size and crop
# (results/results-imagenet.csv of huggingface/pytorch-image-models, commit aa4b585): (top-1, top-5), %.
ACCURACY: dict[str, tuple[float, float]] = {
    "inception_v4.tf_in1k": (80.144, 94.982), "inception_resnet_v2.tf_in1k": (80.434, 95.312),
    "inception_resnet_v2.tf_ens_adv_in1k": (79.998, 94.94), "mobilenetv1_100.ra4_e3600_r224_in1k": (75.388, 92.31),
    "resnetv2_18.ra4_e3600_r224_in1k": (73.572, 91.356), "resnetv2_34.ra4_e3600_r224_in1k": (77.626, 93.518),
    "resnetv2_50.a1h_in1k": (80.41, 95.082), "resnetv2_101.a1h_in1k": (82.042, 95.866),
    "resnet18.a1_in1k": (71.504, 90.086), "resnet18.a2_in1k": (70.634, 89.486), "resnet18.a3_in1k": (65.67, 86.268),
    "resnet18.fb_ssl_yfcc100m_ft_in1k": (72.636, 91.416), "resnet18.fb_swsl_ig1b_ft_in1k": (73.286, 91.754),
    "resnet18.gluon_in1k": (70.844, 89.75), "resnet34.a1_in1k": (76.42, 92.896), "resnet34.a2_in1k": (75.52, 92.454),
    "resnet34.a3_in1k": (70.58, 89.54), "resnet34.bt_in1k": (75.176, 92.166), "resnet34.gluon_in1k": (74.574, 91.988),
    "resnet34.ra4_e3600_r224_in1k": (77.492, 93.498), "resnet50.a1_in1k": (80.382, 94.598),
    "resnet50.a1h_in1k": (79.264, 94.498), "resnet50.a2_in1k": (79.828, 94.56), "resnet50.a3_in1k": (75.994, 92.494),
    "resnet50.am_in1k": (79.004, 94.392), "resnet50.b1k_in1k": (79.564, 94.622), "resnet50.b2k_in1k": (79.388, 94.58),
    "resnet50.bt_in1k": (78.444, 94.274), "resnet50.c1_in1k": (79.766, 94.954), "resnet50.c2_in1k": (79.868, 94.862),
    "resnet50.d_in1k": (79.904, 94.666), "resnet50.fb_ssl_yfcc100m_ft_in1k": (79.252, 94.826),
    "resnet50.fb_swsl_ig1b_ft_in1k": (81.146, 95.98), "resnet50.gluon_in1k": (77.58, 93.704),
    "resnet50.ra_in1k": (78.82, 94.314), "resnet50.ram_in1k": (79.034, 94.386), "resnet101.a1_in1k": (81.494, 95.164),
    "resnet101.a1h_in1k": (81.95, 95.76), "resnet101.a2_in1k": (81.344, 95.198),
    "resnet101.a3_in1k": (77.928, 93.686), "resnet101.gluon_in1k": (79.306, 94.538),
    "resnet152.a1_in1k": (81.998, 95.294), "resnet152.a1h_in1k": (82.818, 96.124),
    "resnet152.a2_in1k": (81.764, 95.27), "resnet152.a3_in1k": (78.896, 94.14),
    "resnet152.gluon_in1k": (79.712, 94.72), "resnext50_32x4d.a1_in1k": (80.526, 94.458),
    "resnext50_32x4d.a1h_in1k": (81.14, 95.32), "resnext50_32x4d.a2_in1k": (80.444, 94.63),
    "resnext50_32x4d.a3_in1k": (77.732, 93.314), "resnext50_32x4d.fb_ssl_yfcc100m_ft_in1k": (80.316, 95.386),
    "resnext50_32x4d.fb_swsl_ig1b_ft_in1k": (82.162, 96.224), "resnext50_32x4d.gluon_in1k": (79.354, 94.424),
    "resnext50_32x4d.ra_in1k": (79.8, 94.608), "resnext101_32x8d.fb_ssl_yfcc100m_ft_in1k": (81.62, 96.036),
    "resnext101_32x8d.fb_swsl_ig1b_ft_in1k": (84.276, 97.188),
    "resnext101_32x8d.fb_wsl_ig1b_ft_in1k": (82.72, 96.624), "wide_resnet50_2.racm_in1k": (81.466, 95.544),
    "densenet121.ra_in1k": (75.574, 92.648), "inception_v3.gluon_in1k": (78.806, 94.372),
    "inception_v3.tf_adv_in1k": (77.598, 93.726), "inception_v3.tf_in1k": (77.866, 93.644),
}


def hf_repo(timm_name: str) -> str:
    return f"timm/{timm_name}"


@functools.cache
def timm_weights(name: str, has_default: bool) -> tuple[PretrainedWeights, ...]:
    """The timm tags of cnnzoo model ``name``; the first is the default unless ``has_default`` (torchvision's)."""
    out = []
    for model, timm_name, size, crop_pct, interpolation, (mean, std), licence in TAGS:
        if model != name:
            continue
        arch_name, tag = timm_name.split(".", 1)
        arch = ARCHITECTURES[arch_name]
        repo = hf_repo(timm_name)
        out.append(PretrainedWeights(
            model=name, tag=tag, default=not has_default and not out, file_name=f"{repo}/{FILE_NAME}",
            url=f"https://huggingface.co/{repo}/resolve/main/{FILE_NAME}", categories=imagenet_categories(),
            preprocessing=Preprocessing(resize=math.floor(size / crop_pct), crop=size, mean=mean, std=std,
                                        interpolation=interpolation),
            top1=ACCURACY[timm_name][0], top5=ACCURACY[timm_name][1],
            source=f"timm (Hugging Face {repo}, {licence or 'licence unstated'})", model_kwargs=arch.model_kwargs,
            loader=functools.partial(_load, repo, arch), local=functools.partial(_local, repo), notes=arch.notes))
    return tuple(out)


def _local(repo: str):
    from .huggingface import cached_file

    return cached_file(repo, FILE_NAME)


def _load(repo: str, arch: Architecture) -> dict:
    from ..weights import read_safetensors
    from .huggingface import hub_file
    from .mapping import map_state_dict

    path = hub_file(repo, FILE_NAME)
    state, _ = read_safetensors(path)
    state = map_state_dict(state, arch.mapping, source=f"{repo}/{FILE_NAME}")
    head = state.get(f"{arch.classifier}.weight")
    if head is None or head.shape[0] != 1000:
        found = "no classifier" if head is None else f"{head.shape[0]} classes"
        hint = " (a TF port with class 0 for background?)" if head is not None and head.shape[0] == 1001 else ""
        raise WeightsError(f"{path} holds {found}{hint} where {repo} has 1000 ImageNet classes; "
                           "it is not the published file: delete it and run again")
    return state
