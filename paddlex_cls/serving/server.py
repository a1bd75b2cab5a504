"""Starting and stopping the service: load the model, listen, serve with uvicorn until SIGTERM or SIGINT.

On a signal the server stops accepting connections, finishes the requests in progress (each is bounded by the URL
timeout and inference), closes the inference thread and returns, so the process exits 0. A second SIGINT forces the
exit (uvicorn's rule).
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from typing import Any, Dict, Iterator, Optional, Tuple

from ..errors import ConfigError, NotBuiltError
from ..log import logger
from ..runtime import available_cores
from .settings import ServeSettings

INSTALL_HINT = 'pip install -e ".[serving]" in a clone of paddlex_cls, or pip install "paddlex_cls[serving]"'


def require_serving_packages() -> None:
    """Raise NotBuiltError (exit code 7) naming the install command when FastAPI or uvicorn is missing."""
    missing = []
    for name in ("fastapi", "uvicorn"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise NotBuiltError(f"serving needs {' and '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} "
                            "not installed", INSTALL_HINT)


def listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: a free one); ConfigError when it cannot be had."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # proto must say TCP: asyncio sets TCP_NODELAY only on such sockets, and without it every answer (headers,
        # then body) waits for the client's delayed ACK, about 40 ms
        sock = socket.socket(family, kind, proto or socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(2048)
        except OSError:
            sock.close()
            raise
        return sock
    except OSError as e:
        raise ConfigError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                          "choose another --port (or --host), or stop what is using it") from None


def _route_uvicorn_logs() -> None:
    # uvicorn's own warnings and errors (bad HTTP, exceptions) go to our log; its INFO chatter is left out
    ours = logging.getLogger("paddlex_cls")
    uv = logging.getLogger("uvicorn")
    uv.handlers = list(ours.handlers)
    uv.setLevel(logging.WARNING)
    uv.propagate = False


def load_predictor(config: Dict[str, Any], device: str, settings: ServeSettings) -> Tuple[Any, str]:
    """(the pipeline's exported model as a Predictor, its model name); the pipeline's topk is the default topk."""
    from ..inference.model_dir import read_inference_yml
    from ..inference.predictor import Predictor
    from ..pipeline import MODULE_KEY

    module = config["SubModules"][MODULE_KEY]
    predictor = Predictor(module["model_dir"], device=device, run_mode=settings.run_mode,
                          batch_size=settings.max_batch, topk=module.get("topk"),
                          num_threads=settings.infer_threads or available_cores())
    exported = read_inference_yml(module["model_dir"]).model_name
    if module.get("model_name") and exported and module["model_name"] != exported:
        logger.warning("model_name=%s but %s was exported from %s", module["model_name"], module["model_dir"],
                       exported)
    return predictor, exported or module.get("model_name") or "model"


def build_service(predictor: Any, settings: ServeSettings) -> Any:
    """The classification service over ``predictor``, its inference thread warmed up."""
    import numpy as np

    from .batcher import InferenceBatcher
    from .service import ClassificationService

    shape = predictor.transform(np.zeros((256, 256, 3), np.uint8)).shape
    batcher = InferenceBatcher(predictor.run_batch, settings.max_batch, warmup_shapes=[shape])
    batcher.wait_ready()
    return ClassificationService(predictor.transform, batcher, predictor.labels, predictor.topk, settings,
                                 settings.decode_threads or available_cores())


def _uvicorn_server(app: Any) -> Any:
    """A uvicorn server for ``app`` that logs the first stop signal (uvicorn itself says nothing at INFO here)."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            if not self.should_exit:
                logger.info("%s: finishing the requests in progress, then stopping", signal.Signals(sig).name)
            super().handle_exit(sig, frame)

    return Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))


class _StopSignals:
    """SIGINT/SIGTERM handling around uvicorn's own.

    uvicorn takes these signals over while it runs and raises them again once it has shut down: this handler makes
    that second delivery harmless (exit 0), and a signal during start-up stops the service before it serves.
    """

    def __init__(self) -> None:
        self.asked = False
        self.server: Any = None

    def __call__(self, signum: int, _frame: Any) -> None:
        if self.server is None and not self.asked:
            logger.info("%s during start-up: stopping", signal.Signals(signum).name)
        self.asked = True
        if self.server is not None:
            self.server.should_exit = True

    @contextlib.contextmanager
    def installed(self) -> Iterator["_StopSignals"]:
        # Paddle's import installs its own SIGTERM handler (a C++ stack dump, then abort): hold the signals back
        # while it loads, then install ours; a signal that came meanwhile is delivered to ours
        signals = {signal.SIGINT, signal.SIGTERM}
        signal.pthread_sigmask(signal.SIG_BLOCK, signals)
        try:
            import paddle  # noqa: F401
        finally:
            previous = {sig: signal.signal(sig, self) for sig in signals}
            signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
        try:
            yield self
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def _log_start(model: str, model_dir: str, device: str, host: str, port: int, s: ServeSettings) -> None:
    from .protocol import HEALTH_PATH, INFER_PATH

    logger.info("serving %s (%s) on %s, run_mode %s, at http://%s:%d  (POST %s, GET %s)", model, model_dir, device,
                s.run_mode, f"[{host}]" if ":" in host else host, port, INFER_PATH, HEALTH_PATH)
    logger.info("limits: body %.4g MiB, %s pixels, %d requests at once, batches of up to %d, URL %.4g s / %.4g MiB",
                s.max_body_mb, f"{s.max_pixels:,}", s.max_queue, s.max_batch, s.url_timeout, s.url_max_mb)


def serve(config: Dict[str, Any], device: Optional[str], settings: ServeSettings) -> None:
    """Serve the pipeline ``config`` until SIGTERM/SIGINT; returns after a graceful shutdown.

    Args:
        config: a loaded pipeline config (``load_pipeline_config``), model_dir set.
        device: ``cpu`` (default), ``gpu:0``...
        settings: host, port and limits.
    """
    require_serving_packages()
    from PIL import Image

    from ..pipeline import MODULE_KEY
    from .app import create_app, wrap

    # Pillow refuses headers above 2 x its own limit as "not an image"; every image here is checked against
    # --max_pixels from its header before decoding, so its check would only hide the size from the 413 answer
    Image.MAX_IMAGE_PIXELS = None
    # Paddle's Intel OpenMP keeps its threads spinning for 200 ms after each inference, taking the cores from the
    # decoding threads and the event loop in between (bench/serve_load.py: 0 halves the CPU per request at 1-4
    # clients, and raises throughput); read when Paddle loads, so set before; the user's own value wins
    os.environ.setdefault("KMP_BLOCKTIME", "0")
    device = device or "cpu"
    with _StopSignals().installed() as stop:
        predictor, model = load_predictor(config, device, settings)
        service = build_service(predictor, settings)
        if stop.asked:
            service.close()
        else:
            with listen(settings.host, settings.port) as sock:
                stop.server = server = _uvicorn_server(wrap(create_app(service), service))
                server.should_exit = stop.asked  # a signal may have come since the check above
                _route_uvicorn_logs()
                _log_start(model, config["SubModules"][MODULE_KEY]["model_dir"], device, *sock.getsockname()[:2],
                           settings)
                server.run(sockets=[sock])
    logger.info("stopped")
