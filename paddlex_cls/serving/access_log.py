"""One log line per request: method, path, status and latency; never the body, the query string or headers, which
may carry the image or credentials. Health checks (polled by load balancers every few seconds) log at DEBUG."""
from __future__ import annotations

import logging
import time

from ..log import logger
from .admission import ASGIApp, Message, Receive, Scope, Send
from .protocol import HEALTH_PATH


class AccessLog:
    """Wraps the app and logs each HTTP request once its response has started (or failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500  # what the server answers if the app fails before starting a response

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            level = logging.DEBUG if scope["path"] == HEALTH_PATH else logging.INFO
            logger.log(level, "%s %s %d %.1f ms", scope["method"], scope["path"][:200], status,
                       (time.perf_counter() - start) * 1000)
