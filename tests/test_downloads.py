"""Downloads and caches that fail safe, against a loopback server (127.0.0.1) that misbehaves on purpose.

Each way a mirror, a network or a disk goes wrong is one line saying what happened and what to do (exit 2
on the command line), and no truncated or foreign file is ever left where a later run would trust it.
"""

from __future__ import annotations

import errno
import hashlib
import http.server
import os
import threading
import time
from pathlib import Path

import pytest

from cnnzoo.cli import main
from cnnzoo.datasets import fetch as data_fetch
from cnnzoo.errors import CnnzooError, DiskFullError, WeightsError
from cnnzoo.hub import MIRROR_ENV, download

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB
SHA = hashlib.sha256(PAYLOAD).hexdigest()
NAME = f"net-{SHA[:8]}.pth"
URL = f"https://download.pytorch.org/models/{NAME}"


class _Misbehaving(http.server.BaseHTTPRequestHandler):
    """``/good/F``: the file; ``/html/F``: a login page with status 200; ``/cut/F``: half the file, then the
    connection closes; ``/slow/F``: the file in small pieces; anything else: 404."""

    requests: list[str] = []

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        kind = self.path.strip("/").split("/")[0]
        type(self).requests.append(self.path)
        if kind == "html":
            body = b"<!DOCTYPE html><html><body>Please sign in to the proxy</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind in ("good", "cut", "slow"):
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            if kind == "cut":
                self.wfile.write(PAYLOAD[:len(PAYLOAD) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            step = len(PAYLOAD) // 8 if kind == "slow" else len(PAYLOAD)
            for i in range(0, len(PAYLOAD), step):
                self.wfile.write(PAYLOAD[i:i + step])
                if kind == "slow":
                    time.sleep(0.1)
        else:
            self.send_error(404, "Not Found")


@pytest.fixture
def server():
    _Misbehaving.requests = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Misbehaving)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home" / "hub" / "checkpoints"


def _files(folder: Path) -> list[str]:
    """What a later run could find: every file but the download lock."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


def test_a_good_download_is_kept_and_then_used_offline(server, hub, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, f"{server}/good")
    assert download(URL, progress=False).read_bytes() == PAYLOAD
    assert _files(hub) == [f".{NAME}.sha256", NAME]
    monkeypatch.setenv(MIRROR_ENV, f"{server}/missing")
    assert download(URL, progress=False) == hub / NAME  # checked from its note: no request
    assert _Misbehaving.requests == [f"/good/{NAME}"]


@pytest.mark.parametrize("kind, message", [
    ("html", r"/html/net-\w+\.pth: the server answered a web page \(HTML\), not the file: a proxy's login or error "
             r"page, or a wrong mirror URL; nothing was saved; download it elsewhere and put it at "),
    ("missing", r"/missing/net-\w+\.pth answered HTTP 404 Not Found; nothing was saved; download it elsewhere"),
    ("cut", r"cannot download http://127\.0\.0\.1:\d+/cut/net-\w+\.pth \(connection closed after 524,288 of "
            r"1,048,576 bytes\); nothing was saved; run the command again, or download it elsewhere"),
])
def test_a_misbehaving_mirror_is_one_line_and_leaves_nothing(server, hub, monkeypatch, kind, message):
    monkeypatch.setenv(MIRROR_ENV, f"{server}/{kind}")
    with pytest.raises(WeightsError, match=message) as caught:
        download(URL, progress=False)
    assert "\n" not in str(caught.value) and str(hub / NAME) in str(caught.value)
    assert _files(hub) == []


def test_an_html_page_without_a_hash_to_check_is_still_refused(server, hub, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, f"{server}/html")
    with pytest.raises(WeightsError, match="answered a web page"):
        download("https://example.org/weights/plain.pth", progress=False)
    assert _files(hub) == []


def test_a_truncated_file_in_the_cache_is_detected_and_downloaded_again(server, hub, monkeypatch):
    hub.mkdir(parents=True)
    (hub / NAME).write_bytes(PAYLOAD[:1000])  # an earlier crash (of another tool) left it
    monkeypatch.setenv(MIRROR_ENV, f"{server}/good")
    with pytest.warns(UserWarning, match=rf"{NAME} in the cache is damaged \(SHA-256 \w+, expected {SHA[:8]}; "
                                         r"truncated by an earlier crash\?\); it is removed and downloaded again"):
        path = download(URL, progress=False)
    assert path.read_bytes() == PAYLOAD


def test_a_cached_file_changed_after_its_check_is_checked_again(server, hub, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, f"{server}/good")
    path = download(URL, progress=False)
    path.write_bytes(PAYLOAD[:-10])  # changed size and time: the note no longer vouches for it
    monkeypatch.setenv(MIRROR_ENV, f"{server}/missing")
    with pytest.warns(UserWarning, match="is damaged"), pytest.raises(WeightsError, match="HTTP 404"):
        download(URL, progress=False)
    assert _files(hub) == []


def test_a_disk_that_fills_during_the_download_is_one_line(server, hub, monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, f"{server}/good")
    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").endswith(".partial"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(DiskFullError, match=rf"the disk is full: cannot write {hub / NAME} \(it needs 1\.0 MB; "):
        download(URL, progress=False)
    assert _files(hub) == []


def test_two_processes_downloading_the_same_file_take_turns(server, hub, monkeypatch, capfd):
    """Two downloads at once (threads here: flock separates open files, as it does processes): one request."""
    monkeypatch.setenv(MIRROR_ENV, f"{server}/slow")
    results, errors = [], []

    def get():
        try:
            results.append(download(URL, progress=False))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=get) for _ in range(2)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    assert not errors and results == [hub / NAME] * 2 and (hub / NAME).read_bytes() == PAYLOAD
    assert _Misbehaving.requests == [f"/slow/{NAME}"]
    assert f"waiting for another process that is downloading {NAME}" in capfd.readouterr().err


def test_on_the_command_line_each_is_exit_2_without_traceback(server, hub, monkeypatch, capsys, tmp_path):
    import cnnzoo
    from cnnzoo import pretrained

    info = cnnzoo.model_info("resnet18")
    real = pretrained.torchvision_weights(info.name, info.torchvision)
    import dataclasses

    fake = tuple(dataclasses.replace(w, file_name=NAME, url=URL) if w.default else w for w in real)
    monkeypatch.setattr(pretrained, "torchvision_weights", lambda n, tv: fake if n == "resnet18" else real)
    for kind in ("html", "missing", "cut"):
        monkeypatch.setenv(MIRROR_ENV, f"{server}/{kind}")
        assert main(["export", "resnet18", "--weights", "imagenet", "--out", str(tmp_path / "r.onnx")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("cnnzoo: error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert _files(hub) == []


def test_data_fetch_checks_md5_also_of_files_already_there(server, tmp_path, monkeypatch):
    md5 = hashlib.md5(PAYLOAD).hexdigest()
    monkeypatch.setitem(data_fetch.SOURCES, "toy", (data_fetch.RemoteFile("toy.gz", f"{server}/good/toy.gz", md5),))
    folder = tmp_path / "data" / "toy"
    folder.mkdir(parents=True)
    (folder / "toy.gz").write_bytes(PAYLOAD[:100])  # truncated by a crash
    with pytest.warns(UserWarning, match="is damaged"):
        assert data_fetch.fetch("toy", tmp_path / "data") == folder
    assert (folder / "toy.gz").read_bytes() == PAYLOAD
    monkeypatch.setitem(data_fetch.SOURCES, "bad", (data_fetch.RemoteFile("bad.gz", f"{server}/html/bad.gz", md5),))
    with pytest.raises(CnnzooError, match=r"answered a web page .*; nothing was saved; put bad\.gz in .* by hand"):
        data_fetch.fetch("bad", tmp_path / "data")
    assert not (tmp_path / "data" / "bad" / "bad.gz").exists()
