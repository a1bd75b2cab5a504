"""A local HTTP server on 127.0.0.1 (port 0) that plays the servers downloads must survive: slow, silent, trickling,
cut off, flaky, lying about sizes. Each route is set per path; unknown paths answer 404."""
from __future__ import annotations

import collections
import http.server
import pickle
import threading
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np

from paddlex_cls.hub.safe_pickle import NAME_TABLE_KEY


def weights_bytes(seed: int = 0, shape: Tuple[int, int] = (64, 32)) -> bytes:
    """A .pdparams body in the layout paddle.save writes for a state dict (dict of arrays plus the name table;
    test_safe_pickle checks that layout against paddle itself), made without importing paddle."""
    rng = np.random.default_rng(seed)
    state = {"fc.weight": rng.standard_normal(shape).astype("float32"), "fc.bias": np.zeros(shape[1], "float32")}
    state[NAME_TABLE_KEY] = {"fc.weight": "linear_0.w_0", "fc.bias": "linear_0.b_0"}
    return pickle.dumps(state, protocol=4)


@dataclass
class Route:
    """How the server answers one path.

    Attributes:
        body: the bytes to send.
        fail_times: answer 503 to this many requests first.
        cut_at: close the connection after this many body bytes (Content-Length still announces the whole body).
        length: the Content-Length to announce (default: len(body)); -1 sends none (the body ends at close).
        chunk: bytes per write.
        delay: seconds before each write.
        silent: accept the connection and never answer.
        redirect: answer 302 to this location.
    """

    body: bytes = b""
    fail_times: int = 0
    cut_at: Optional[int] = None
    length: Optional[int] = None
    chunk: int = 1 << 16
    delay: float = 0.0
    silent: bool = False
    redirect: str = ""


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_HTTPServer"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path
        with owner.lock:
            owner.hits[path] += 1
            hit = owner.hits[path]
        route = owner.routes.get(path)
        if route is None:
            self.send_error(404)
            return
        if route.silent:
            owner.stopping.wait(60)
            return
        if route.redirect:
            self.send_response(302)
            self.send_header("Location", route.redirect)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if hit <= route.fail_times:
            self.send_error(503)
            return
        self.send_response(200)
        length = len(route.body) if route.length is None else route.length
        if length >= 0:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        body = route.body if route.cut_at is None else route.body[:route.cut_at]
        try:
            for i in range(0, len(body), route.chunk):
                if route.delay and owner.stopping.wait(route.delay):
                    return
                self.wfile.write(body[i:i + route.chunk])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up, as it should
            pass
        self.close_connection = True


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: "LocalServer"


class LocalServer:
    """Start with ``with LocalServer() as server:``; ``server.url(path)`` gives the URL of a route."""

    def __init__(self) -> None:
        self.routes: Dict[str, Route] = {}
        self.hits: collections.Counter = collections.Counter()
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def route(self, path: str, **kwargs) -> str:
        """Set how ``path`` is answered; returns its URL."""
        self.routes[path] = Route(**kwargs)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self) -> "LocalServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        """Stop answering: later connections are refused."""
        if not self.stopping.is_set():
            self.stopping.set()
            self.httpd.shutdown()
            self.httpd.server_close()

    def __exit__(self, *exc) -> None:
        self.stop()
