"""The papers' training recipes, each a set of :class:`TrainConfig` overrides.

Sources are in ``shared/REFERENCE.md``; where a paper is silent (GoogLeNet's base learning rate) the
choice is marked. Schedules that the papers ran for 60–300 epochs keep their shape at any ``--epochs``:
milestones are fractions of the run.
"""

from __future__ import annotations

from typing import Any

from ..errors import CnnzooError

RECIPES: dict[str, dict[str, Any]] = {
    # Krizhevsky et al. 2012: SGD 0.9, lr 1e-2 /10 on plateau, wd 5e-4, batch 128, crops + flips + PCA noise.
    "alexnet2012": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=128,
                        schedule="plateau", gamma=0.1, patience=2, augment=("crop", "flip", "pca")),
    # Simonyan & Zisserman 2014: as AlexNet with batch 256; scale jittering ~ random-resized crops.
    "vgg2014": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=5e-4, batch_size=256,
                    schedule="plateau", gamma=0.1, patience=2, augment=("crop", "flip")),
    # Szegedy et al. 2014: SGD 0.9, lr x0.96 every 8 epochs, aux losses x0.3, photometric distortions.
    # The paper gives no base lr or weight decay: 0.01 and 2e-4 (Caffe's reproduction) are ours.
    "googlenet2014": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=2e-4, batch_size=128,
                          schedule="exponential", gamma=0.96, step_epochs=8, aux_weight=0.3,
                          augment=("crop", "flip", "jitter")),
    # He et al. 2015 (ImageNet): SGD 0.9, lr 0.1 /10 on plateau, wd 1e-4, batch 256, no dropout.
    "resnet2015": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=256,
                       schedule="plateau", gamma=0.1, patience=2, augment=("crop", "flip")),
    # He et al. 2015 §4.2 (CIFAR): lr 0.1, /10 at 32k and 48k of 64k iterations, batch 128, pad-4 crops.
    "resnet2015-cifar": dict(optimizer="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, batch_size=128,
                             schedule="multistep", gamma=0.1, milestones=(0.5, 0.75), augment=("crop", "flip")),
    # Huang et al. 2016: Nesterov 0.9, lr 0.1 /10 at 50% and 75%, wd 1e-4, batch 64.
    "densenet2016": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4, batch_size=64,
                         schedule="multistep", gamma=0.1, milestones=(0.5, 0.75), augment=("crop", "flip")),
    # Iandola et al. 2016 (the authors' Caffe solver): SGD 0.9, lr 0.04 at batch 512 (0.01 at 128), weight
    # decay 2e-4, linear decay to zero ("poly", power 1), no warm-up, crops and flips. Under fast's lr 0.1 the
    # ReLU after SqueezeNet's classifier dies and every logit stays 0 (Fashion-MNIST, 3 epochs of 9,000
    # images: 0.097 test top-1; this solver: 0.499).
    "squeezenet2016": dict(optimizer="sgd", lr=0.01, momentum=0.9, weight_decay=2e-4, batch_size=128,
                           schedule="onecycle", warmup_epochs=0.0, augment=("crop", "flip")),
    # Shortest time to a good accuracy: one-cycle, label smoothing, Nesterov. No augmentation: at the short
    # runs this recipe is for, crops and flips cost accuracy (LeNet-5 on Fashion-MNIST, 3 epochs: 82.8% with
    # them, 88.2% without); long runs add --augment crop,flip. Batch 128 at lr 0.1 (256 at 0.2 per image)
    # gives a one-epoch run twice the steps: ResNet-20 trained on 5,000 Fashion-MNIST images for 1 epoch
    # reaches 71.4% test top-1 at batch 128 and 14.9% at batch 256. No validation split: the schedule ends at
    # zero, so the last epoch is the result, and every image trains (the same run holding out 1,000: 57.3%).
    "fast": dict(optimizer="sgd", lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4, batch_size=128,
                 schedule="onecycle", label_smoothing=0.1, warmup_epochs=0.3, augment=(), val_size=0),
}

# The variants: each is its base recipe with the model built differently; the faithful one keeps its name.
# alexnet2012 with the nets built with He init (He et al. 2015) for every layer: the default of AlexNet and
# ZFNet. Under their own init (N(0, 0.01), or PyTorch's for the small variants) these nets without batch
# norm sit at chance for the first hundreds of steps (AlexNet's small variant on Fashion-MNIST: loss 2.30
# after 55 steps at lr 0.01; with He init, 0.69 test top-1 after 60 steps). alexnet2012 stays as it was,
# under its name.
RECIPES["alexnet2012-he"] = {**RECIPES["alexnet2012"], "model_kwargs": {"init": "he"}}
# vgg2014 with the nets built with He init for the linear layers too: the default of the VGGs. Under
# torchvision's init (N(0, 0.01) linear layers) a VGG without batch norm sits at chance for the first
# hundreds of steps (VGG-11 on Fashion-MNIST: loss 2.302 after 150 steps), and one with BN (in its
# convolutions only) starts slowly (tests/test_recipes_learn.py: VGG-11-BN's loss 2.30 -> 1.96 in 240
# steps). The paper initialised its deeper nets from net A; vgg2014 stays as it was, under its name.
RECIPES["vgg2014-he"] = {**RECIPES["vgg2014"], "model_kwargs": {"init": "he"}}
# fast with every residual block starting as the identity (its last BN's scale zero; Goyal et al.
# 2017): the default of ResNet-110 with stochastic depth. Under He init its 54 residual branches add up
# (loss 3.35 before the first step, against 2.30 at chance), stochastic depth's 1/(1-p) scaling doubles
# the deepest ones, and fast's lr 0.1 then blows the loss up to 20-25 within 10 steps; with each block
# starting as the identity it starts at 2.34 and falls. On Fashion-MNIST in the CPU results table's
# budget: 0.208 test top-1 under fast.
RECIPES["fast-identity"] = {**RECIPES["fast"], "model_kwargs": {"zero_init_residual": True}}

#: models whose default is ``fast-identity`` (see its comment)
IDENTITY_START = ("resnet110_sd_cifar",)

_BY_FAMILY = {
    "alexnet": "alexnet2012-he", "zfnet": "alexnet2012-he", "lenet": "fast", "vgg": "vgg2014-he",
    "nin": "alexnet2012", "googlenet": "googlenet2014", "inception": "googlenet2014", "resnet": "resnet2015",
    "preact_resnet": "resnet2015-cifar", "wide_resnet": "resnet2015-cifar", "resnext": "resnet2015",
    "densenet": "densenet2016", "squeezenet": "squeezenet2016",
}

_SOURCES = {"alexnet2012": "Krizhevsky et al. 2012", "vgg2014": "Simonyan & Zisserman 2014",
            "googlenet2014": "Szegedy et al. 2014", "resnet2015": "He et al. 2015",
            "resnet2015-cifar": "He et al. 2015, section 4.2", "densenet2016": "Huang et al. 2016",
            "squeezenet2016": "Iandola et al. 2016"}

#: why a model's default is a variant rather than its paper's recipe
_VARIANT_WHY = {
    "alexnet2012-he": "alexnet2012-he: its paper's (Krizhevsky et al. 2012) with He init; without BN, its own "
                      "init does not start learning in a short run",
    "vgg2014-he": "vgg2014-he: its paper's (Simonyan & Zisserman 2014) with He init for the linear layers; with "
                  "torchvision's N(0, 0.01), they do not start learning in a short run",
    "fast-identity": "fast-identity: fast with each residual block starting as the identity; under He init this "
                     "deep a stochastic-depth net diverges at fast's learning rate",
}


def recipe_choice(model: str) -> tuple[str, str]:
    """The recipe a model trains with unless told otherwise, and why: its paper's, a documented variant of it
    (``_VARIANT_WHY``), else ``fast``.

    CIFAR-style ResNets (small inputs) default to ``fast``, not to their paper's CIFAR recipe: that recipe
    (64k iterations, about 180 epochs, crops and flips) is made for long runs, and in a user's first short
    runs it loses to a plain SGD loop (ResNet-20, 5,000 Fashion-MNIST images, 1 epoch: 43.5% against
    61.0%; ``benchmarks/default_recipe.py``). ``--recipe resnet2015-cifar`` trains the paper's way.
    """
    from ..registry import model_info  # here, not at the top: `cnnzoo train --help` reads RECIPES without torch

    info = model_info(model)
    recipe = "fast-identity" if model in IDENTITY_START else _BY_FAMILY.get(info.family, "fast")
    if recipe == "resnet2015" and info.input_size[1] <= 64:
        return "fast", "fast (the paper's resnet2015-cifar is for ~180 epochs; in short runs a plain SGD loop beats it)"
    if recipe in _VARIANT_WHY:
        return recipe, _VARIANT_WHY[recipe]
    if recipe == "fast":
        return "fast", "fast: there is no paper recipe for this family"
    return recipe, f"{recipe}, its paper's ({_SOURCES[recipe]})"


def default_recipe(model: str) -> str:
    """The name of the recipe a model trains with unless told otherwise (see :func:`recipe_choice`)."""
    return recipe_choice(model)[0]


def recipe_overrides(name: str) -> dict[str, Any]:
    if name not in RECIPES:
        raise CnnzooError(f"unknown recipe {name!r}; choose from {', '.join(RECIPES)}")
    return {k: dict(v) if isinstance(v, dict) else v for k, v in RECIPES[name].items()}


# Fine-tuning pretrained weights (``cnnzoo finetune``, ``cnnzoo transfer-study``), layered over the model's
# recipe: a tenth of the usual from-scratch rate, a short cosine run without warm-up, one classifier-only
# epoch before ``full`` unfreezes (a random head's first gradients would otherwise scramble the features),
# and the 2x2 rule choosing what trains. Fine-tuning keeps its validation split whatever the recipe (``fast``
# has none): the best epoch and the probe's regularisation are chosen on it.
FINETUNE: dict[str, Any] = dict(strategy="auto", lr=0.01, epochs=5, schedule="cosine", warmup_epochs=0.0,
                                head_epochs=1, augment=(), label_smoothing=0.0, engine="auto", val_size=5000)
