"""Weights files: foreign, corrupt and mismatched files are one clear error; heads and channels adapt."""

from __future__ import annotations

import pickle

import pytest
import torch

import cnnzoo
from cnnzoo.cli import main


def test_missing_garbage_and_truncated_files_are_weights_errors(tmp_path):
    with pytest.raises(cnnzoo.WeightsError, match="does not exist"):
        cnnzoo.create_model("lenet5", weights=str(tmp_path / "none.pth"))
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00not weights at all" * 10)
    with pytest.raises(cnnzoo.WeightsError, match="cannot read"):
        cnnzoo.create_model("lenet5", weights=str(garbage))
    good = tmp_path / "m.safetensors"
    cnnzoo.create_model("lenet5").save(good)
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(cnnzoo.WeightsError, match="truncated"):
        cnnzoo.create_model("lenet5", weights=str(cut))


class Evil:
    def __reduce__(self):
        return (print, ("unpickled!",))


def test_a_pickle_with_code_is_refused_not_run(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    path.write_bytes(pickle.dumps({"conv1.weight": Evil()}))
    with pytest.raises(cnnzoo.WeightsError):
        cnnzoo.create_model("lenet5", weights=str(path))
    assert "unpickled!" not in capsys.readouterr().out


def test_weights_of_another_model_name_the_mismatch(tmp_path, capsys):
    path = tmp_path / "vgg.pth"
    torch.save(cnnzoo.create_model("vgg11_cifar").state_dict(), path)
    with pytest.raises(cnnzoo.WeightsError, match="do not fit lenet5: .*missing keys"):
        cnnzoo.create_model("lenet5", weights=str(path))
    assert main(["summary", "nope-model"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_other_class_count_reinitialises_the_head_with_a_warning(tmp_path):
    src = cnnzoo.create_model("lenet5", num_classes=10)
    path = tmp_path / "l.pth"
    torch.save(src.state_dict(), path)
    with pytest.warns(UserWarning, match="re-initialised"):
        model = cnnzoo.create_model("lenet5", num_classes=4, weights=str(path))
    assert model.fc.out_features == 4
    assert torch.equal(model.conv1.weight, src.conv1.weight)


def test_grayscale_model_sums_rgb_filters(tmp_path):
    rgb = cnnzoo.create_model("vgg11_cifar", in_chans=3)
    path = tmp_path / "rgb.pth"
    torch.save(rgb.state_dict(), path)
    gray = cnnzoo.create_model("vgg11_cifar", in_chans=1, weights=str(path))
    assert torch.equal(gray.features[0].weight, rgb.features[0].weight.sum(dim=1, keepdim=True))
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(gray.eval()(x), rgb.eval()(x.expand(2, 3, 32, 32)), atol=1e-5)


def test_unknown_pretrained_tag(tmp_path):
    with pytest.raises(cnnzoo.WeightsError, match="lenet5 has no pretrained weights to load by name"):
        cnnzoo.create_model("lenet5", weights="imagenet")
