"""cnnzoo visualize: filters by tower, top patches in one pass equal to a brute-force search, patches cut at the
analyzer's receptive field, and the command's one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnzoo
from cnnzoo.cli import main
from cnnzoo.explain.visualize import cut_patches, filters_image, receptive_box, top_patches, towers


def test_alexnet2012_filters_are_split_into_its_two_towers():
    model = cnnzoo.create_model("alexnet2012")
    assert towers(model, 96) == 2 and towers(cnnzoo.create_model("vgg16"), 64) == 1
    image, what = filters_image(model)
    assert what == "features.0: 96 filters 3x11x11, 2 towers of 48"
    # 16 columns of 55-px tiles (11 px x 5) and 6 rows with a 20-px gap between the towers
    assert image.size == (16 * 56 + 1, 6 * 56 + 1 + 20)


def test_top_patches_in_one_pass_are_the_brute_force_maxima():
    model = cnnzoo.create_model("lenet5").eval()
    images = torch.randint(0, 256, (37, 1, 32, 32), dtype=torch.uint8)
    pipeline = lambda u8: u8.float().div(255)
    values, where = top_patches(model, "conv2", images, pipeline, [0, 5], k=9, batch_size=10)
    with torch.no_grad():
        maps = torch.nn.Sequential(model.conv1, model.act1, model.pool1, model.conv2)(pipeline(images))
    for row, unit in enumerate([0, 5]):
        flat = maps[:, unit].flatten()
        np.testing.assert_allclose(values[row], flat.topk(9).values.numpy(), rtol=1e-5)
        n, r, c = where[row, 0]
        assert maps[n, unit, r, c].item() == pytest.approx(values[row, 0], rel=1e-5)


def test_patches_are_cut_at_the_analyzer_receptive_field():
    model = cnnzoo.create_model("lenet5")
    assert receptive_box(model, "conv2", (1, 32, 32)) == (14, 2.0, 6.5)  # 5x5 conv, 2x2 pool, 5x5 conv
    x = torch.arange(32 * 32, dtype=torch.float32).view(1, 1, 32, 32)
    (patch,) = cut_patches(x, np.array([[0, 0, 0]]), (14, 2.0, 6.5))
    assert patch.shape == (14, 14, 3) and patch[0, 0, 0] == 0 and patch[13, 13, 0] == 1  # pixels 0..13, min-max scaled


@pytest.mark.parametrize("argv, message", [
    (["visualize", "activations", "lenet5", "--out", "a.png"], "visualize activations needs an image"),
    (["visualize", "filters", "lenet5", "--out", "a.jpg"], "--out a.jpg: visualize writes a .png"),
    (["visualize", "patches", "lenet5", "--out", "a.png"], "visualize patches needs --weights"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cnnzoo: error: {message}") and err.count("\n") == 1


def test_filters_command_writes_the_picture(tmp_path, capsys):
    assert main(["visualize", "filters", "alexnet2012", "--out", str(tmp_path / "f.png")]) == 0
    assert "96 filters 3x11x11, 2 towers of 48" in capsys.readouterr().out and (tmp_path / "f.png").exists()


def test_patches_and_embedding_commands_draw_a_trained_net(tmp_path, capsys):
    """The two dataset commands end to end, on a LeNet-5 trained briefly on generated IDX data."""
    from PIL import Image

    from cnnzoo.training.config import TrainConfig
    from cnnzoo.training.fit import fit
    from datagen import write_idx_dataset

    root = write_idx_dataset(tmp_path / "mnist", n_train=200, n_test=60)
    fit(TrainConfig(model="lenet5", data="mnist", data_root=str(root), epochs=1, batch_size=40, val_size=0,
                    out=str(tmp_path / "run"), progress=False, amp="off"), log=lambda *a, **k: None)
    common = ["--weights", str(tmp_path / "run" / "best.pt"), "--data", "mnist", "--data-root", str(root)]
    assert main(["visualize", "patches", "lenet5", *common, "--layer", "conv2", "--units", "0,1,2",
                 "--out", str(tmp_path / "p.png")]) == 0
    assert "top-9 patches of units 0,1,2 of conv2 (receptive field 14 px) over 60 test images" in capsys.readouterr().out
    with Image.open(tmp_path / "p.png") as picture:
        assert picture.size[1] > picture.size[0] / 9 * 2  # three rows of nine patches
    assert main(["visualize", "embedding", "lenet5", *common, "--limit", "40", "--out", str(tmp_path / "e.png")]) == 0
    assert "t-SNE of 40 penultimate codes (84-d)" in capsys.readouterr().out and (tmp_path / "e.png").exists()
