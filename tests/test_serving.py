"""The HTTP service (--serve): a real server process on 127.0.0.1, a real HTTP client (httpx), a tiny export.

Covers PaddleX's documented request and response, agreement with ``create_model(...).predict``, concurrent clients,
every bad input of issue 14 (each answered with the envelope and its status, the service still answering after),
the 503 of a full queue and a graceful SIGTERM with a request in flight.
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import List

import numpy as np
import pytest
import yaml
from PIL import Image

from .conftest import ROOT
from .hub_server import LocalServer

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
pytestmark = pytest.mark.cli  # every test here runs `main.py --serve` (or the CLI) in a subprocess

LABELS = ["cat", "dog", "bird"]  # 4 classes: class 3 has no name, so it is named "3"


class ServerProcess:
    """``python main.py --serve ...`` on a free port; its log lines are collected as they come."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--serve", "--host", "127.0.0.1",
                                      "--port", "0", "--infer_threads", "1", *args], stderr=subprocess.PIPE,
                                     text=True, env=env)
        self.lines: List[str] = []
        self.port = 0
        self._started = threading.Event()
        threading.Thread(target=self._drain, daemon=True).start()

    def ready(self) -> "ServerProcess":
        """Wait for the start line (which names the port); returns self."""
        self._started.wait(180)
        assert self.port, "the service did not start:\n" + self.log
        self.url = f"http://127.0.0.1:{self.port}"
        return self

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            found = re.search(r"at http://127\.0\.0\.1:(\d+)", line)
            if found and not self.port:
                self.port = int(found.group(1))
                self._started.set()
        self._started.set()  # the process ended

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def huge_png_header(width: int = 30_000, height: int = 30_000) -> bytes:
    """A 60-byte PNG whose header declares width x height pixels (decoding it would take gigabytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + \
        chunk(b"IEND", b"")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A 32 px PP-LCNet_x0_25 export with 4 classes whose scores differ per image, and 4 test images."""
    import paddle

    from paddlex_cls.engine.exporter import ExportSpec, export_model
    from paddlex_cls.models import get_entry

    root = tmp_path_factory.mktemp("serve")
    paddle.seed(0)
    net = get_entry("PP-LCNet_x0_25").build(num_classes=4)
    # a fresh network's features are ~1e-18 (its logits all but equal): scale the classifier so scores differ
    net.fc.weight.set_value(net.fc.weight * 1e18)
    paddle.save(net.state_dict(), str(root / "w.pdparams"))
    export_model(ExportSpec(model_name="PP-LCNet_x0_25", num_classes=4, weights=str(root / "w.pdparams"),
                            out_dir=str(root / "inference"), labels=LABELS, input_size=32))
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        arr = (rng.random((40, 48, 3)) * 255).astype(np.uint8)
        arr[:, i * 10:(i + 1) * 10] = 250
        paths.append(root / f"img{i}.png")
        paths[-1].write_bytes(png_bytes(arr))
    return root / "inference", paths


@pytest.fixture(scope="module")
def services(model, tmp_path_factory):
    """Two services, started together to save time:

    - "main": from a pipeline YAML with Serving keys (visualize off by default, URL timeout 1 s);
    - "one_at_a_time": --max_queue 1, from the pipeline name and --model_dir, for the 503 and the SIGTERM test.
    """
    model_dir, _ = model
    path = tmp_path_factory.mktemp("pipe") / "image_classification.yaml"
    path.write_text(yaml.safe_dump({
        "pipeline_name": "image_classification",
        "SubModules": {"ImageClassification": {"module_name": "image_classification", "model_name": "PP-LCNet_x0_25",
                                               "model_dir": str(model_dir), "batch_size": 1, "topk": 2}},
        "Serving": {"visualize": False, "max_body_mb": 8, "url_timeout": 1.0, "max_batch": 4}}))
    started = {"main": ServerProcess("--pipeline", str(path), "--device", "cpu"),
               "one_at_a_time": ServerProcess("--pipeline", "image_classification", "--model_dir", str(model_dir),
                                              "--max_queue", "1", "--url_timeout", "20")}
    yield {name: srv.ready() for name, srv in started.items()}
    for srv in started.values():
        srv.stop()


@pytest.fixture(scope="module")
def server(services):
    yield services["main"]
    assert services["main"].stop() == 0


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def infer(client, **body):
    return client.post("/image-classification", json=body)


def assert_envelope_error(resp, status: int, needle: str = "") -> dict:
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert list(data) == ["logId", "errorCode", "errorMsg"] and data["errorCode"] == status
    assert needle.lower() in data["errorMsg"].lower(), data["errorMsg"]
    return data


def test_health(client):
    r = client.get("/health")
    assert r.status_code == 200
    data = r.json()
    assert list(data) == ["logId", "errorCode", "errorMsg"]
    assert data["errorCode"] == 0 and data["errorMsg"] == "Healthy" and uuid.UUID(data["logId"])


def test_documented_request_and_response(client, model, server):
    _, paths = model
    r = infer(client, image=b64(paths[0].read_bytes()), topk=3, visualize=False, logId="mine", extra="ignored")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = r.json()
    assert list(data) == ["logId", "result", "errorCode", "errorMsg"]
    assert data["errorCode"] == 0 and data["errorMsg"] == "Success" and data["logId"] != "mine"
    assert list(data["result"]) == ["categories"]  # no image key when visualize is off, as in PaddleX
    cats = data["result"]["categories"]
    assert len(cats) == 3 and all(list(c) == ["id", "name", "score"] for c in cats)
    scores = [c["score"] for c in cats]
    assert scores == sorted(scores, reverse=True)
    for c in cats:  # the float32 of a 5-place rounding, as PaddleX sends it
        assert c["score"] == float(np.around(np.float32(c["score"]), 5))
        assert c["name"] == (LABELS[c["id"]] if c["id"] < len(LABELS) else str(c["id"]))
    # defaults: topk from the pipeline (2), visualize from Serving (off); the request can turn it on
    assert len(infer(client, image=b64(paths[1].read_bytes())).json()["result"]["categories"]) == 2
    vis = infer(client, image=b64(paths[1].read_bytes()), visualize=True).json()["result"]
    with Image.open(io.BytesIO(base64.b64decode(vis["image"]))) as img:
        assert img.format == "JPEG" and img.mode == "RGB"
    # topk above the class count gives every class (PaddleX's behaviour); "2" is taken as 2
    assert len(infer(client, image=b64(paths[1].read_bytes()), topk=10000).json()["result"]["categories"]) == 4
    assert len(infer(client, image=b64(paths[1].read_bytes()), topk="2").json()["result"]["categories"]) == 2
    log = server.log
    assert "PP-LCNet_x0_25" in log and "on cpu" in log and f"http://127.0.0.1:{server.port}" in log
    assert re.search(r"POST /image-classification 200 [\d.]+ ms", log)
    assert b64(paths[0].read_bytes())[:40] not in log


def test_same_as_create_model(client, model):
    from paddlex_cls import create_model

    model_dir, paths = model
    local = create_model(model_dir=str(model_dir), run_mode="mkldnn", topk=4)
    for path, res in zip(paths, local.predict([str(p) for p in paths])):
        cats = infer(client, image=b64(path.read_bytes()), topk=4).json()["result"]["categories"]
        assert [c["id"] for c in cats] == res.class_ids
        assert [c["name"] for c in cats] == res.label_names
        np.testing.assert_allclose([c["score"] for c in cats], res.scores, atol=2e-5)


def test_concurrent_clients(server, model):
    _, paths = model
    bodies = [{"image": b64(p.read_bytes()), "topk": 1} for p in paths]

    def one_client(k: int) -> List[int]:
        with httpx.Client(base_url=server.url, timeout=60) as c:
            return [c.post("/image-classification", json=bodies[(k + i) % 4]).status_code for i in range(25)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(one_client, range(8)) for s in batch]
    assert statuses == [200] * 200


def _bad_inputs(url_server: LocalServer) -> dict:
    jpg = jpeg_bytes((np.random.default_rng(1).random((64, 64, 3)) * 255).astype(np.uint8))
    return {
        "not JSON": ({"content": b"{not json", "headers": {"Content-Type": "application/json"}}, 422, "json_invalid"),
        "missing image": ({"json": {"topk": 1}}, 422, '"loc": "body.image"'),
        "image not a string": ({"json": {"image": 5}}, 422, "string_type"),
        "bad base64": ({"json": {"image": "this is not base64!"}}, 400, "base64"),
        "not an image": ({"json": {"image": b64(b"hello, these bytes are no image")}}, 400, "cannot be decoded"),
        "truncated JPEG": ({"json": {"image": b64(jpg[:len(jpg) // 2])}}, 400, "cannot be decoded"),
        "0-byte file": ({"json": {"image": ""}}, 400, "empty"),
        "30,000 x 30,000 px header": ({"json": {"image": b64(huge_png_header())}}, 413, "30000x30000"),
        "50 MB body": ({"content": b'{"image": "' + b"A" * (50 << 20) + b'"}',
                        "headers": {"Content-Type": "application/json"}}, 413, "larger than the limit"),
        "topk 0": ({"json": {"image": b64(jpg), "topk": 0}}, 422, "greater_than"),
        "topk -1": ({"json": {"image": b64(jpg), "topk": -1}}, 422, "greater_than"),
        "topk a string": ({"json": {"image": b64(jpg), "topk": "three"}}, 422, "int_parsing"),
        "URL that does not answer": ({"json": {"image": url_server.route("/silent.jpg", silent=True)}}, 400,
                                     "cannot download"),
        "URL to a non-image": ({"json": {"image": url_server.route("/page.jpg", body=b"<html>hi</html>")}}, 400,
                               "cannot be decoded"),
    }


BAD_INPUT_NAMES = ["not JSON", "missing image", "image not a string", "bad base64", "not an image", "truncated JPEG",
                   "0-byte file", "30,000 x 30,000 px header", "50 MB body", "topk 0", "topk -1", "topk a string",
                   "URL that does not answer", "URL to a non-image"]


@pytest.fixture(scope="module")
def url_server():
    with LocalServer() as srv:
        yield srv


@pytest.mark.parametrize("case", BAD_INPUT_NAMES)
def test_bad_input(client, model, url_server, case):
    kwargs, status, needle = _bad_inputs(url_server)[case]
    start = time.monotonic()
    r = client.post("/image-classification", **kwargs)
    assert_envelope_error(r, status, needle)
    assert time.monotonic() - start < 10  # the silent URL fails after --url_timeout (1 s), not a hung worker
    _, paths = model  # still answering, and correctly
    assert client.get("/health").status_code == 200
    assert infer(client, image=b64(paths[0].read_bytes())).status_code == 200


def test_errors_echo_log_id_and_match_paddlex(client):
    r = infer(client, topk=1, logId="req-42")
    assert assert_envelope_error(r, 422)["logId"] == "req-42"
    assert json.loads(r.json()["errorMsg"]) == [{"type": "missing", "loc": "body.image", "msg": "Field required"}]
    assert assert_envelope_error(client.post("/nope", json={"logId": "L"}), 404, "Not Found")["logId"] == "L"
    assert_envelope_error(client.get("/image-classification"), 405, "Method Not Allowed")
    r = client.post("/image-classification", content=json.dumps({"image": "x"}), headers={"Content-Type": "text/plain"})
    assert_envelope_error(r, 422, "model_attributes_type")


def test_full_queue_and_graceful_shutdown(model, services):
    """--max_queue 1: a second request while one is in progress gets 503 at once; SIGTERM then lets the first one
    finish with 200 and the process exit 0."""
    _, paths = model
    srv = services["one_at_a_time"]
    with LocalServer() as images, httpx.Client(base_url=srv.url, timeout=60) as c:
        slow_url = images.route("/slow.png", body=paths[0].read_bytes(), delay=1.5)
        outcome = {}
        first = threading.Thread(target=lambda: outcome.update(r=c.post("/image-classification",
                                                                         json={"image": slow_url})))
        first.start()
        while not images.hits["/slow.png"]:  # the first request is inside the service, waiting for its download
            time.sleep(0.02)
        with httpx.Client(base_url=srv.url, timeout=10) as other:
            start = time.monotonic()
            busy = other.post("/image-classification", json={"image": b64(paths[1].read_bytes())})
            assert time.monotonic() - start < 1.0
        assert_envelope_error(busy, 503, "busy")
        assert busy.headers["retry-after"] == "1"
        srv.proc.send_signal(signal.SIGTERM)
        first.join(30)
        assert outcome["r"].status_code == 200 and outcome["r"].json()["errorCode"] == 0
    assert srv.proc.wait(60) == 0  # it stops by itself: no second signal
    assert "SIGTERM: finishing the requests in progress" in srv.log and "stopped" in srv.log


def test_missing_packages_exit_7(model):
    model_dir, _ = model
    code = ("import sys; sys.modules['fastapi'] = None; from paddlex_cls.cli import main; "
            f"sys.exit(main(['--serve', '--pipeline', 'image_classification', '--model_dir', {str(model_dir)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 7, proc.stderr
    assert 'pip install -e ".[serving]"' in proc.stderr and "fastapi" in proc.stderr


def test_serve_needs_a_pipeline_and_reports_a_missing_official_model(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), PADDLEX_CLS_HOME=str(tmp_path / "home"),
               PADDLEX_CLS_MODEL_SOURCE=str(tmp_path))  # an empty local mirror: the official weights are not there
    run = [sys.executable, str(ROOT / "main.py"), "--serve"]
    proc = subprocess.run(run, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2 and "--serve needs --pipeline" in proc.stderr
    proc = subprocess.run(run + ["--pipeline", "image_classification", "--model_name", "PP-LCNet_x0_25"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 5, proc.stderr[-3000:]
    assert "PP-LCNet_x0_25_pretrained.pdparams" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_serves_the_official_model_when_model_dir_is_null(tmp_path, model):
    """model_dir null: the official weights (here from a local mirror) are exported once and served with the
    ImageNet-1k names."""
    import paddle

    from paddlex_cls.models import get_entry

    _, paths = model
    paddle.seed(0)
    weights = tmp_path / "mirror" / "PP-LCNet_x0_25_pretrained.pdparams"
    weights.parent.mkdir()
    paddle.save(get_entry("PP-LCNet_x0_25").build(num_classes=1000).state_dict(), str(weights))
    os.environ.update(PADDLEX_CLS_HOME=str(tmp_path / "home"), PADDLEX_CLS_MODEL_SOURCE=str(weights.parent))
    try:
        srv = ServerProcess("--pipeline", "image_classification", "--model_name", "PP-LCNet_x0_25").ready()
    finally:
        for key in ("PADDLEX_CLS_HOME", "PADDLEX_CLS_MODEL_SOURCE"):
            os.environ.pop(key)
    with httpx.Client(base_url=srv.url, timeout=60) as c:
        cats = infer(c, image=b64(paths[0].read_bytes()), topk=3).json()["result"]["categories"]
    assert srv.stop() == 0
    assert len(cats) == 3 and all(c["name"] != str(c["id"]) for c in cats)  # ImageNet names, not ids
    assert (tmp_path / "home" / "official_models" / "PP-LCNet_x0_25" / "inference" / "inference.yml").is_file()
