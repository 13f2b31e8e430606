"""What a new user gets without choosing: the main job's settings and each model's default recipe."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.commands.run import MAIN_JOB_THREADS, main_job_config
from cnnzoo.layers import MaxPool2x2
from cnnzoo.training.recipes import FINETUNE, RECIPES, default_recipe, recipe_choice


def test_main_job_config_builds_and_trains_a_step():
    cfg = main_job_config(out=None)
    cfg.check()
    assert (cfg.model, cfg.recipe, cfg.epochs, cfg.batch_size, cfg.lr) == ("lenet5", "fast", 4, 256, 0.2)
    assert cfg.model_kwargs == {"act": "relu", "pool": "max", "norm": "bn"}
    # All 60,000 images train and no epoch pays for a validation pass; no augmentation at this length.
    assert cfg.val_size == 0 and cfg.augment == () and cfg.label_smoothing == 0.1
    assert MAIN_JOB_THREADS == 1
    model = cnnzoo.create_model(cfg.model, **cfg.model_kwargs)
    assert isinstance(model.pool1, MaxPool2x2) and isinstance(model.pool2, MaxPool2x2)
    loss = F.cross_entropy(model(torch.randn(4, 1, 32, 32)), torch.arange(4), label_smoothing=cfg.label_smoothing)
    loss.backward()
    assert model.conv1.weight.grad is not None
    assert main_job_config(out="x", epochs=2).epochs == 2


def test_default_recipes_and_why():
    assert default_recipe("lenet5") == "fast"
    assert default_recipe("resnet20_cifar") == "fast" and default_recipe("preact_resnet18") == "resnet2015-cifar"
    assert default_recipe("resnet50") == "resnet2015" and default_recipe("vgg16") == "vgg2014"
    recipe, why = recipe_choice("lenet5")
    assert recipe == "fast" and "no paper recipe" in why
    recipe, why = recipe_choice("resnet20_cifar")
    assert recipe == "fast" and "resnet2015-cifar is for ~180 epochs" in why
    assert recipe_choice("resnet50") == ("resnet2015", "resnet2015, its paper's (He et al. 2015)")


def test_fast_recipe_trains_short_runs_without_augmentation():
    """Crops and flips cost the fast recipe 5 points at 3 epochs of LeNet-5 (benchmarks/default_recipe.py)."""
    assert RECIPES["fast"]["augment"] == ()
    assert RECIPES["fast"]["schedule"] == "onecycle" and RECIPES["fast"]["label_smoothing"] == 0.1
    assert (RECIPES["fast"]["batch_size"], RECIPES["fast"]["lr"]) == (128, 0.1)
    # Every image trains (the schedule ends at zero: the last epoch is the result); fine-tuning keeps its split.
    assert RECIPES["fast"]["val_size"] == 0 and FINETUNE["val_size"] == 5000


def test_info_says_which_recipe_is_the_default_and_why(capsys):
    assert main(["info", "resnet20_cifar"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("default recipe"))
    assert line.split(None, 2)[2] == recipe_choice("resnet20_cifar")[1]
