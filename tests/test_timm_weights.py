"""timm's ImageNet weights by name, from the Hugging Face cache: table, key mapping, cache, download, bad input.

No network: every file is a timm model of random weights saved as safetensors, either written into a
Hugging Face cache by hand (the hub's layout, ``HF_HUB_OFFLINE=1``) or served by a loopback server that
speaks the hub's download protocol (``HF_ENDPOINT=http://127.0.0.1:PORT``).
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import math
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import cnnzoo
from cnnzoo import pretrained
from cnnzoo.cli import main
from cnnzoo.errors import WeightsError
from cnnzoo.pretrained import from_timm

timm = pytest.importorskip("timm")

TIMM_TAGS = [(model, name) for model, name, *_ in from_timm.TAGS]
SLOW = {"inception_v3", "resnet101", "resnet152", "resnext101_32x8d"}  # the largest at their published sizes
ARCHS = [pytest.param(a, marks=pytest.mark.slow) if a in SLOW else a
         for a in sorted({name.split(".")[0] for _, name in TIMM_TAGS})]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _model_of(arch: str) -> str:
    return next(m for m, n in TIMM_TAGS if n.startswith(arch + "."))


@functools.cache
def _random_timm_state(arch: str) -> tuple[dict[str, torch.Tensor], "torch.nn.Module"]:
    """A timm ``arch`` of random weights (every weight matters: normal(0, 0.05), BN statistics spread)."""
    torch.manual_seed(0)
    model = timm.create_model(arch, pretrained=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.05)
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0.0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    return state, model


def _put_in_cache(cache: Path, repo: str, state: dict[str, torch.Tensor] | None = None, data: bytes | None = None
                  ) -> Path:
    """``repo``'s model.safetensors in the hub's cache layout: refs/main names a snapshot that holds it."""
    folder = cache / ("models--" + repo.replace("/", "--"))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / "main").write_text(COMMIT)
    path = folder / "snapshots" / COMMIT / "model.safetensors"
    path.parent.mkdir(parents=True, exist_ok=True)
    if state is not None:
        save_file(state, str(path))
    else:
        path.write_bytes(data)
    return path


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.new("RGB", (80, 80), (120, 60, 30)).save(path)
    return path


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf" / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return cache


# --- the table against timm's own metadata ----------------------------------------------------------------


@pytest.mark.parametrize("model,name", TIMM_TAGS)
def test_every_tag_carries_timms_published_preprocessing(model, name):
    cfg = timm.models.get_pretrained_cfg(name).to_dict()
    w = pretrained.resolve(cnnzoo.model_info(model), name.split(".", 1)[1])
    assert cfg["num_classes"] == 1000 and cfg["hf_hub_id"] == f"timm/{name}"
    assert w.preprocessing.crop == cfg["input_size"][1]
    assert w.preprocessing.resize == math.floor(cfg["input_size"][1] / cfg["crop_pct"])
    assert w.preprocessing.interpolation == cfg["interpolation"]
    assert (w.preprocessing.mean, w.preprocessing.std) == (cfg["mean"], cfg["std"])
    assert 60 < w.top1 < w.top5 < 100  # timm's published evaluation, in percent
    assert len(w.categories) == 1000 and w.source.startswith(f"timm (Hugging Face timm/{name}")


def test_35_imagenet_models_have_weights_by_name_and_no_timm_tag_repeats_torchvision():
    named = [n for n in cnnzoo.list_models() if cnnzoo.model_info(n).pretrained]
    assert len(named) == 37
    new = {"inception_v4", "inception_resnet_v2", "mobilenet_v1", "preact_resnet18", "preact_resnet34",
           "preact_resnet50", "preact_resnet101"}
    assert new <= set(named)
    assert not any(n.split(".")[1].startswith("tv") for _, n in TIMM_TAGS)
    for model in new:
        assert pretrained.resolve(cnnzoo.model_info(model), "imagenet").source.startswith("timm")
    assert pretrained.resolve(cnnzoo.model_info("resnet50"), "imagenet").tag == "IMAGENET1K_V2"


# --- parity: timm's model of random weights, through the cache and the key table, equals ours -------------


@pytest.mark.parametrize("arch", ARCHS)
def test_timm_weights_give_timms_outputs(arch, hf_cache):
    """Every timm architecture whose tags cnnzoo offers, at its published input size, batch 1."""
    state, timm_model = _random_timm_state(arch)
    model = _model_of(arch)
    tags = [n.split(".", 1)[1] for m, n in TIMM_TAGS if n.startswith(arch + ".")]
    for tag in tags:
        _put_in_cache(hf_cache, f"timm/{arch}.{tag}", state)
    ours = cnnzoo.create_model(model, weights=tags[0]).eval()
    size = max(w.preprocessing.crop for w in pretrained.available(cnnzoo.model_info(model)) if w.tag in tags)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected, got = timm_model(x), ours(x)
    assert got.shape == expected.shape == (1, 1000)
    assert (got - expected).abs().max().item() < 1e-5 * max(1.0, expected.abs().max().item())
    first = ours.pretrained_weights.state_dict()
    for tag in tags[1:]:  # the other tags of this architecture: the same model arguments, the same table
        spec = pretrained.resolve(cnnzoo.model_info(model), tag)
        assert spec.model_kwargs == ours.pretrained_weights.model_kwargs
        again = spec.state_dict()
        assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)


def test_preact_stem_differs_from_timms_without_its_argument(hf_cache):
    """The mapping needs stem_norm=False: cnnzoo's default stem (BN-ReLU before the pool) would not give timm's."""
    state, timm_model = _random_timm_state("resnetv2_18")
    _put_in_cache(hf_cache, "timm/resnetv2_18.ra4_e3600_r224_in1k", state)
    ours = cnnzoo.create_model("preact_resnet18", weights="imagenet")
    assert ours.model_args["stem_norm"] is False
    with pytest.raises(WeightsError, match="do not fit"):
        cnnzoo.create_model("preact_resnet18", weights="imagenet", stem_norm=True)


def test_info_says_how_timms_model_was_mapped(capsys):
    assert main(["info", "mobilenet_v1"]) == 0
    out = capsys.readouterr().out
    assert "act='relu6'" in out and "timm" in out


# --- the cache, offline, and bad input -------------------------------------------------------------------


def test_offline_with_nothing_cached_is_one_line_naming_file_cache_and_mirror(hf_cache, capsys, tmp_path):
    photos = tmp_path / "photos"
    assert main(["predict", "inception_v4", "--weights", "imagenet", str(photos)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "timm/inception_v4.tf_in1k/model.safetensors" in err and "HF_HUB_OFFLINE=1" in err
    assert str(hf_cache / "models--timm--inception_v4.tf_in1k") in err and "HF_ENDPOINT" in err


@pytest.mark.parametrize("bad,message", [
    (b"<html><body>mirror</body></html>", "not a safetensors file"),
    ("truncated", "truncated"),
    ("1001", "1001 classes"),
])
def test_a_bad_cached_file_is_one_line(hf_cache, bad, message, capsys, photo):
    state, _ = _random_timm_state("mobilenetv1_100")
    repo = "timm/mobilenetv1_100.ra4_e3600_r224_in1k"
    if bad == "truncated":
        tmp = hf_cache / "full.safetensors"
        tmp.parent.mkdir(parents=True, exist_ok=True)
        save_file(state, str(tmp))
        path = _put_in_cache(hf_cache, repo, data=tmp.read_bytes()[:-1000])
    elif bad == "1001":
        path = _put_in_cache(hf_cache, repo, {**state, "classifier.weight": torch.zeros(1001, 1024),
                                              "classifier.bias": torch.zeros(1001)})
    else:
        path = _put_in_cache(hf_cache, repo, data=bad)
    with pytest.raises(WeightsError, match=message):
        cnnzoo.create_model("mobilenet_v1", weights="imagenet")
    assert main(["predict", "mobilenet_v1", "--weights", "imagenet", str(photo)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and path.exists()  # a user's file is named, not deleted


@pytest.mark.slow
def test_finetune_inception_v4_from_a_hand_populated_cache(hf_cache, tmp_path, capsys):
    state, _ = _random_timm_state("inception_v4")
    _put_in_cache(hf_cache, "timm/inception_v4.tf_in1k", state)
    from PIL import Image

    for cls, colour in (("red", (200, 30, 30)), ("blue", (30, 30, 200))):
        (tmp_path / "photos" / cls).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (90, 80), tuple(c + 10 * i for c in colour)).save(tmp_path / "photos" / cls / f"{i}.png")
    out = tmp_path / "run"
    code = main(["finetune", "inception_v4", "--weights", "imagenet", "--data", f"folder:{tmp_path / 'photos'}",
                 "--epochs", "1", "--image-size", "75", "--out", str(out), "--strategy", "linear", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert (out / "best.pt").is_file() or any(out.iterdir())


# --- downloads through a loopback server that speaks the hub's protocol ---------------------------------


class _Hub(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    html = False
    etag: str | None = None  # the SHA-256 published for the file, if not its bytes' own

    def log_message(self, *args) -> None:
        pass

    def _answer(self, body: bool) -> None:
        # /{repo}/resolve/{revision}/{filename}
        parts = self.path.split("?")[0].strip("/").split("/")
        data = self.files.get("/".join(parts[:2])) if len(parts) == 5 and parts[2] == "resolve" else None
        if self.html:
            data = b"<!doctype html><html><body>proxy login</body></html>"
        if data is None:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{self.etag or hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", COMMIT)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server's names
        self._answer(False)

    def do_GET(self) -> None:  # noqa: N802
        self._answer(True)


@pytest.fixture
def hub_server(hf_cache, monkeypatch):
    handler = type("Hub", (_Hub,), {"files": {}, "html": False, "etag": None})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{httpd.server_address[1]}")
    yield handler
    httpd.shutdown()
    httpd.server_close()


def test_download_through_hf_endpoint_then_offline_from_the_cache(hub_server, hf_cache, tmp_path, monkeypatch):
    state, timm_model = _random_timm_state("mobilenetv1_100")
    save_file(state, str(tmp_path / "m.safetensors"))
    hub_server.files["timm/mobilenetv1_100.ra4_e3600_r224_in1k"] = (tmp_path / "m.safetensors").read_bytes()
    ours = cnnzoo.create_model("mobilenet_v1", weights="imagenet").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - timm_model(x)).abs().max().item() < 1e-5
    spec = ours.pretrained_weights
    assert spec.cached() is not None and str(spec.cached()).startswith(str(hf_cache))
    hub_server.files.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    again = cnnzoo.create_model("mobilenet_v1", weights="imagenet").eval()
    with torch.no_grad():
        assert torch.equal(again(x), ours(x))


@pytest.mark.parametrize("html", [False, True])
def test_a_mirror_answering_404_or_html_is_one_line_and_leaves_nothing(hub_server, hf_cache, html, capsys, photo):
    hub_server.html = html
    assert main(["predict", "inception_v4", "--weights", "imagenet", str(photo)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert ("not a safetensors file" in err) if html else ("HTTP 404" in err and "HF_ENDPOINT=" in err), err
    left = [p for p in hf_cache.rglob("*") if p.is_file() and "model.safetensors" in p.name or
            p.is_file() and "blobs" in p.parts]
    assert not left


def test_a_download_whose_sha256_differs_from_the_published_etag_is_refused(hub_server, hf_cache, tmp_path):
    state, _ = _random_timm_state("mobilenetv1_100")
    save_file(state, str(tmp_path / "m.safetensors"))
    data = (tmp_path / "m.safetensors").read_bytes()
    hub_server.files["timm/mobilenetv1_100.ra4_e3600_r224_in1k"] = data[:-4] + b"\0\0\0\0"  # damaged on the way
    hub_server.etag = hashlib.sha256(data).hexdigest()
    with pytest.raises(WeightsError, match="does not match the SHA-256 the hub published"):
        cnnzoo.create_model("mobilenet_v1", weights="imagenet")
    assert not [p for p in hf_cache.rglob("*") if p.is_file() and "blobs" in p.parts and not p.name.startswith(".")]


def test_a_damaged_cached_blob_is_found_by_its_name_and_removed(hf_cache, tmp_path):
    state, _ = _random_timm_state("mobilenetv1_100")
    path = _put_in_cache(hf_cache, "timm/mobilenetv1_100.ra4_e3600_r224_in1k", state)
    data = path.read_bytes()
    blob = path.parents[2] / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir()
    blob.write_bytes(data[:-4] + b"\0\0\0\0")  # same size, other bytes: only the digest tells
    path.unlink()
    path.symlink_to(f"../../blobs/{blob.name}")
    with pytest.warns(UserWarning, match="damaged"), pytest.raises(WeightsError, match="not in the Hugging Face cache"):
        cnnzoo.create_model("mobilenet_v1", weights="imagenet")
    assert not blob.exists() and not path.exists()


def test_cnnzoo_weights_mirror_serves_hub_files_into_the_hubs_cache(hf_cache, tmp_path, monkeypatch):
    from huggingface_hub import try_to_load_from_cache

    state, timm_model = _random_timm_state("mobilenetv1_100")
    repo = "timm/mobilenetv1_100.ra4_e3600_r224_in1k"
    served = tmp_path / "mirror" / repo / "model.safetensors"
    served.parent.mkdir(parents=True)
    save_file(state, str(served))
    monkeypatch.setenv("CNNZOO_WEIGHTS_MIRROR", (tmp_path / "mirror").as_uri())
    ours = cnnzoo.create_model("mobilenet_v1", weights="imagenet").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (ours(x) - timm_model(x)).abs().max().item() < 1e-5
    found = try_to_load_from_cache(repo, "model.safetensors", cache_dir=str(hf_cache))  # where timm looks
    assert isinstance(found, str) and Path(found).resolve().name == hashlib.sha256(served.read_bytes()).hexdigest()
    assert sorted(p.name for p in (hf_cache / ("models--" + repo.replace("/", "--")) / "blobs").iterdir()
                  if not p.name.endswith(".lock")) == sorted([Path(found).resolve().name,
                                                              f".{Path(found).resolve().name}.sha256"])
    served.unlink()
    monkeypatch.delenv("CNNZOO_WEIGHTS_MIRROR")
    again = cnnzoo.create_model("mobilenet_v1", weights="imagenet").eval()
    with torch.no_grad():
        assert torch.equal(again(x), ours(x))
