"""What a new user gets without choosing: the main job's settings and each model's default recipe."""

from __future__ import annotations

import torch
import torch.nn.functional as F

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.commands.run import MAIN_JOB_THREADS, main_job_config
from cnnzoo.layers import MaxPool2x2
from cnnzoo.training.config import TrainConfig
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
    assert default_recipe("resnet50") == "resnet2015"
    # The faithful recipes of AlexNet and VGG do not start in a short run: documented variants with He init.
    assert default_recipe("vgg16") == default_recipe("vgg11_cifar") == default_recipe("vgg16_bn") == "vgg2014-he"
    assert default_recipe("alexnet2012") == default_recipe("zfnet_cifar") == "alexnet2012-he"
    assert default_recipe("nin") == "alexnet2012"
    assert recipe_choice("vgg16")[1].startswith("vgg2014-he: its paper's (Simonyan & Zisserman 2014) with He init")
    assert recipe_choice("nin") == ("alexnet2012", "alexnet2012, its paper's (Krizhevsky et al. 2012)")
    recipe, why = recipe_choice("lenet5")
    assert recipe == "fast" and "no paper recipe" in why
    recipe, why = recipe_choice("resnet20_cifar")
    assert recipe == "fast" and "resnet2015-cifar is for ~180 epochs" in why
    assert recipe_choice("resnet50") == ("resnet2015", "resnet2015, its paper's (He et al. 2015)")
    # ResNet-110 with stochastic depth diverges under fast at He init: its blocks start as the identity.
    assert default_recipe("resnet110_sd_cifar") == "fast-identity" and default_recipe("resnet110_cifar") == "fast"
    assert recipe_choice("squeezenet1_0") == ("squeezenet2016", "squeezenet2016, its paper's (Iandola et al. 2016)")


def test_fast_identity_starts_every_block_as_the_identity():
    from cnnzoo.training.recipes import recipe_overrides

    cfg = TrainConfig(model="resnet110_sd_cifar", **recipe_overrides("fast-identity"))
    model = cnnzoo.create_model("resnet110_sd_cifar", in_chans=1, **cfg.model_kwargs).eval()
    assert all(int(torch.count_nonzero(block.bn2.weight)) == 0 for stage in (model.layer1, model.layer2, model.layer3)
               for block in stage)
    x = torch.randn(2, 16, 8, 8)
    block = model.layer1[0]
    assert torch.equal(block(x), torch.relu(x))  # the identity shortcut, then the ReLU


def test_fast_recipe_trains_short_runs_without_augmentation():
    """Crops and flips cost the fast recipe 5 points at 3 epochs of LeNet-5 (benchmarks/default_recipe.py)."""
    assert RECIPES["fast"]["augment"] == ()
    assert RECIPES["fast"]["schedule"] == "onecycle" and RECIPES["fast"]["label_smoothing"] == 0.1
    assert (RECIPES["fast"]["batch_size"], RECIPES["fast"]["lr"]) == (128, 0.1)
    # Every image trains (the schedule ends at zero: the last epoch is the result); fine-tuning keeps its split.
    assert RECIPES["fast"]["val_size"] == 0 and FINETUNE["val_size"] == 5000


def test_a_recipes_model_arguments_reach_the_model_and_a_flag_wins(capsys):
    def printed(*argv: str) -> str:
        assert main(["train", *argv, "--print-config"]) == 0
        return capsys.readouterr().out

    assert 'init = "he"' in printed("vgg11")
    assert 'init = "torchvision"' in printed("vgg11", "--model-arg", "init=torchvision")
    assert "init =" not in printed("vgg11", "--recipe", "vgg2014")


def test_he_init_gives_vgg_and_alexnet_linear_layers_he_scale():
    for name, fc in (("vgg11_cifar", "classifier.3"), ("alexnet_cifar", "classifier.3")):
        torch.manual_seed(0)
        default, he = cnnzoo.create_model(name), cnnzoo.create_model(name, init="he")
        std = {m: dict(m.named_modules())[fc].weight.std().item() for m in (default, he)}
        width = dict(he.named_modules())[fc].in_features
        assert abs(std[he] - (2 / width) ** 0.5) < 0.1 * (2 / width) ** 0.5
        assert std[default] < 0.7 * std[he]


def test_info_says_which_recipe_is_the_default_and_why(capsys):
    assert main(["info", "resnet20_cifar"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("default recipe"))
    assert line.split(None, 2)[2] == recipe_choice("resnet20_cifar")[1]
