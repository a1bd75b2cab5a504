"""Downloads, the URL-keyed cache and official weights, against a local HTTP server on 127.0.0.1 (no internet)."""
from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from paddlex_cls.errors import WeightsError
from paddlex_cls.hub import (
    OFFICIAL_URL,
    DownloadError,
    Limits,
    cached_download,
    download,
    fetch_bytes,
    official_inference_dir,
    official_model_name,
    official_weights,
    official_weights_url,
    state_dict_verifier,
    url_cache_path,
)

from .hub_server import LocalServer, weights_bytes

ROOT = Path(__file__).resolve().parents[1]
FAST = Limits(max_bytes=1 << 20, connect_timeout=1.0, read_timeout=1.0, deadline=10.0, retries=2, backoff=0.01)
WEIGHTS = weights_bytes()


@pytest.fixture(autouse=True)
def hub_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("PADDLEX_CLS_HOME", str(home))
    monkeypatch.delenv("PADDLEX_CLS_MODEL_SOURCE", raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a proxy set on the machine must not see these requests
    return home


@pytest.fixture
def server():
    with LocalServer() as s:
        yield s


def cached(url: str, limits: Limits = FAST) -> str:
    return cached_download(url, verify=state_dict_verifier(), limits=limits)


def entries(folder: Path) -> list:
    """Files left in a cache folder, lock files aside."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".lock")) if folder.exists() else []


def server_dest(url: str) -> Path:
    """The cache path of ``url`` (the tests that call download() directly use it as the destination)."""
    return Path(url_cache_path(url))


def test_first_call_downloads_second_uses_the_cache_offline(server, hub_home):
    url = server.route("/a/model.pdparams", body=WEIGHTS)
    path = cached(url)
    assert Path(path).read_bytes() == WEIGHTS and path == url_cache_path(url)
    assert path.startswith(str(hub_home / "weights")) and server.hits["/a/model.pdparams"] == 1
    server.stop()
    assert cached(url) == path


def test_404_fails_at_once_with_a_clear_error(server):
    url = server.url("/missing/model.pdparams")
    start = time.monotonic()
    with pytest.raises(WeightsError) as info:
        cached(url, dataclasses.replace(FAST, backoff=2.0))
    assert time.monotonic() - start < 1.5 and server.hits["/missing/model.pdparams"] == 1  # not retried
    assert info.value.exit_code == 5
    assert url in info.value.message and "HTTP 404" in info.value.message
    assert url_cache_path(url) in info.value.hint  # where to put the file by hand


def test_connection_closed_half_way_leaves_nothing(server):
    url = server.route("/half/model.pdparams", body=WEIGHTS, cut_at=len(WEIGHTS) // 2)
    with pytest.raises(WeightsError, match=f"closed after {len(WEIGHTS) // 2} of {len(WEIGHTS)} bytes .3 attempts"):
        cached(url)
    assert server.hits["/half/model.pdparams"] == 3  # transient: retried twice
    assert entries(Path(url_cache_path(url)).parent) == []


def test_transient_5xx_is_retried(server):
    url = server.route("/flaky/model.pdparams", body=WEIGHTS, fail_times=2)
    assert Path(cached(url)).read_bytes() == WEIGHTS
    assert server.hits["/flaky/model.pdparams"] == 3


def test_a_server_that_never_answers_times_out(server):
    url = server.route("/silent/model.pdparams", silent=True)
    start = time.monotonic()
    with pytest.raises(DownloadError, match="did not answer in time"):
        download(url, str(server_dest(url)), limits=dataclasses.replace(FAST, read_timeout=0.5, retries=0))
    assert time.monotonic() - start < 2


def test_a_trickling_server_hits_the_overall_deadline(server):
    url = server.route("/drip/model.pdparams", body=b"x" * 100, chunk=1, delay=2.0)  # a byte every 2 s
    start = time.monotonic()
    with pytest.raises(DownloadError, match="overall deadline of 2.5 s"):
        download(url, str(server_dest(url)), limits=dataclasses.replace(FAST, read_timeout=3.0, deadline=2.5))
    assert time.monotonic() - start < 3.5
    assert entries(server_dest(url).parent) == []


def test_content_length_over_the_limit_is_refused(server):
    url = server.route("/huge/model.pdparams", body=b"", length=5 << 30)
    with pytest.raises(DownloadError, match="it is 5.0 GB, more than the limit of 1.0 MB"):
        download(url, str(server_dest(url)), limits=FAST)
    assert server.hits["/huge/model.pdparams"] == 1


def test_a_body_past_the_limit_without_content_length_is_stopped(server):
    url = server.route("/endless/model.pdparams", body=b"x" * (3 << 20), length=-1)
    with pytest.raises(DownloadError, match="sent more than the limit of 1.0 MB"):
        download(url, str(server_dest(url)), limits=FAST)
    assert entries(server_dest(url).parent) == []


def test_two_processes_download_the_same_url_once(server, hub_home):
    url = server.route("/slow/model.pdparams", body=WEIGHTS, chunk=512, delay=0.06)  # about 1 s
    script = ("import logging, sys; from paddlex_cls.hub import cached_download, state_dict_verifier; "
              "logging.basicConfig(level=logging.INFO); "
              "print(cached_download(sys.argv[1], verify=state_dict_verifier()))")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-c", script, url], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=30) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert {o[0].strip() for o in outs} == {url_cache_path(url)}
    assert server.hits["/slow/model.pdparams"] == 1
    assert sum("waiting for another process" in o[1] for o in outs) == 1, outs  # they did overlap
    assert Path(url_cache_path(url)).read_bytes() == WEIGHTS
    assert entries(Path(url_cache_path(url)).parent) == ["model.pdparams"]


def test_a_cached_file_corrupted_by_hand_is_downloaded_again(server, caplog):
    url = server.route("/c/model.pdparams", body=WEIGHTS)
    path = Path(cached(url))
    path.write_bytes(WEIGHTS[:100])
    with caplog.at_level(logging.WARNING, logger="paddlex_cls"):
        assert cached(url) == str(path)
    assert path.read_bytes() == WEIGHTS and server.hits["/c/model.pdparams"] == 2
    assert "is unusable" in caplog.text and "truncated" in caplog.text


def test_a_download_that_is_not_weights_is_not_cached(server):
    url = server.route("/html/model.pdparams", body=b"<html>login required</html>")
    with pytest.raises(WeightsError, match="the downloaded file is unusable: .*not a Paddle file"):
        cached(url)
    assert entries(server_dest(url).parent) == []


def test_leftovers_of_a_killed_download_are_removed(server):
    url = server.route("/k/model.pdparams", body=WEIGHTS)
    dest = server_dest(url)
    dest.parent.mkdir(parents=True)
    (dest.parent / ".model.pdparams.999.abcd.part").write_bytes(b"half")
    cached(url)
    assert entries(dest.parent) == ["model.pdparams"]


def test_two_urls_with_the_same_file_name_have_separate_entries(server):
    url_a = server.route("/a/model.pdparams", body=weights_bytes(seed=1))
    url_b = server.route("/b/model.pdparams", body=weights_bytes(seed=2))
    path_a, path_b = cached(url_a), cached(url_b)
    assert path_a != path_b and os.path.basename(path_a) == os.path.basename(path_b) == "model.pdparams"
    assert Path(path_a).read_bytes() == weights_bytes(seed=1) and Path(path_b).read_bytes() == weights_bytes(seed=2)


def test_progress_on_a_terminal_and_few_log_lines_otherwise(server, capsys, caplog):
    url = server.route("/p/model.pdparams", body=WEIGHTS * 40, chunk=2048)
    download(url, str(server_dest(url)), limits=dataclasses.replace(FAST, max_bytes=1 << 30), progress=True)
    err = capsys.readouterr().err
    assert err.startswith("\r  ") and "335.8 KB / 335.8 KB, " in err and err.endswith("\n")
    url2 = server.route("/q/model.pdparams", body=WEIGHTS * 40, chunk=2048)
    with caplog.at_level(logging.INFO, logger="paddlex_cls"):
        download(url2, str(server_dest(url2)), limits=dataclasses.replace(FAST, max_bytes=1 << 30), progress=None)
    assert 2 <= len(caplog.records) <= 5 and capsys.readouterr().err == ""  # start, 25/50/75 %, done


def test_redirects_are_followed_to_http_only(server):
    server.route("/files/model.pdparams", body=WEIGHTS)
    url = server.route("/latest/model.pdparams", redirect="/files/model.pdparams")
    assert Path(cached(url)).read_bytes() == WEIGHTS and cached(url) == url_cache_path(url)
    ftp = server.route("/ftp/model.pdparams", redirect="ftp://127.0.0.1/model.pdparams")
    with pytest.raises(WeightsError, match="redirects to ftp://127.0.0.1/model.pdparams, which is not an http"):
        cached(ftp)


def test_an_unwritable_cache_is_a_clear_error(server, hub_home):
    url = server.route("/r/model.pdparams", body=WEIGHTS)
    hub_home.mkdir()
    (hub_home / "weights").write_text("a file where the cache folder should be")
    with pytest.raises(WeightsError, match="cannot write weights into the cache") as info:
        cached(url)
    assert "PADDLEX_CLS_HOME" in info.value.hint


def test_fetch_bytes_for_inputs(server):
    url = server.route("/img/cat.jpg", body=b"jpeg bytes")
    assert fetch_bytes(url, limits=FAST) == b"jpeg bytes"
    with pytest.raises(DownloadError, match="HTTP 404") as info:
        fetch_bytes(server.url("/img/none.jpg"), limits=FAST)
    assert info.value.status == 404 and not info.value.transient
    with pytest.raises(DownloadError, match="only http"):
        fetch_bytes("file:///etc/passwd", limits=FAST)


def test_model_source_as_a_mirror_url(server, monkeypatch):
    url = server.route("/mirror/PP-LCNet_x1_0_pretrained.pdparams", body=WEIGHTS)
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", server.url("/mirror/"))
    assert official_weights_url("PP-LCNet_x1_0") == url
    path = official_weights("PP-LCNet_x1_0", limits=FAST)
    assert path == url_cache_path(url) and Path(path).read_bytes() == WEIGHTS
    server.stop()
    assert official_weights("PP-LCNet_x1_0", limits=FAST) == path


def test_model_source_as_a_local_folder(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "ResNet18_pretrained.pdparams").write_bytes(WEIGHTS)
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", str(folder))
    assert official_weights("ResNet18") == str(folder / "ResNet18_pretrained.pdparams")  # no server at all
    with pytest.raises(WeightsError) as info:
        official_weights("ResNet34")
    assert str(folder / "ResNet34_pretrained.pdparams") in info.value.message
    assert "PADDLEX_CLS_MODEL_SOURCE" in info.value.message and "ResNet34_pretrained.pdparams" in info.value.hint


def test_offline_message_names_the_url_the_variable_and_the_manual_path(server, monkeypatch):
    base = server.url("/mirror")
    server.stop()  # nothing listens any more: connection refused, as offline
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", base)
    url = f"{base}/PP-LCNet_x1_0_pretrained.pdparams"
    with pytest.raises(WeightsError) as info:
        official_weights("PP-LCNet_x1_0", limits=FAST)
    manual = url_cache_path(url)
    assert url in info.value.message and "PADDLEX_CLS_MODEL_SOURCE" in info.value.hint and manual in info.value.hint
    Path(manual).parent.mkdir(parents=True, exist_ok=True)
    Path(manual).write_bytes(WEIGHTS)  # put there by hand: used without the network
    assert official_weights("PP-LCNet_x1_0", limits=FAST) == manual


def test_official_weights_must_fit_the_model(server, monkeypatch):
    server.route("/m/PP-LCNet_x1_0_pretrained.pdparams", body=WEIGHTS)
    monkeypatch.setenv("PADDLEX_CLS_MODEL_SOURCE", server.url("/m"))
    fits = {"fc.weight": [64, 32], "fc.bias": [32]}
    assert official_weights("PP-LCNet_x1_0", expected=lambda: fits, limits=FAST)
    with pytest.raises(WeightsError, match=r"1 shape\(s\) differ \(fc.weight: \[64, 32\] instead of \[64, 1000\]\)"):
        official_weights("PP-LCNet_x1_0", expected={"fc.weight": [64, 1000]}, limits=FAST)
    with pytest.raises(WeightsError, match=r"1 key\(s\) missing \(last_conv.weight\)"):
        official_weights("PP-LCNet_x1_0", expected={**fits, "last_conv.weight": [1280, 512, 1, 1]}, limits=FAST)


def test_official_names_and_paths(hub_home):
    url = OFFICIAL_URL.format(name="PP-HGNetV2-B0")
    assert official_weights_url("PP-HGNetV2-B0") == url and official_model_name(url) == "PP-HGNetV2-B0"
    assert official_model_name("https://example.com/PP-HGNetV2-B0_pretrained.pdparams") is None
    assert official_inference_dir("PP-HGNetV2-B0") == str(hub_home / "official_models" / "PP-HGNetV2-B0" / "inference")
    assert url_cache_path("https://x/a/m.pdparams") != url_cache_path("https://x/a/m.pdparams?v=2")


def test_importing_the_hub_imports_no_paddle_models_or_engine():
    script = ("import sys, paddlex_cls.hub; bad = [m for m in sys.modules if m == 'paddle' or "
              "m.startswith(('paddle.', 'paddlex_cls.models', 'paddlex_cls.engine'))]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", script], check=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
