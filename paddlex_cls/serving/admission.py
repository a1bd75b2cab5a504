"""The ASGI layer in front of the app that keeps memory bounded: a body size limit for every request and a cap on
the image requests inside the service. Both answer before the body is read: a declared Content-Length above the
limit gets 413, an image request over the cap gets 503, at once. A body that grows past the limit while it streams
in (no Content-Length) stops being read and gets 413 too.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Dict, Optional

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from .protocol import error_body

Scope = Dict[str, Any]
Message = Dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` when a streamed body passes the limit; FastAPI lets HTTPExceptions through to the
    app's handler, which answers the envelope."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body is larger than the limit of {limit:,} bytes (--max_body_mb)")


def _declared_length(scope: Scope) -> int:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() else -1
    return -1


async def send_envelope(scope: Scope, receive: Receive, send: Send, status: int, message: str,
                        headers: Optional[Dict[str, str]] = None) -> None:
    await JSONResponse(error_body(status, message), status_code=status, headers=headers)(scope, receive, send)


class Admission:
    """Wraps the app: body size limit on every request, at most ``max_queue`` image requests at once.

    Args:
        app: the ASGI app.
        max_body_bytes: largest request body.
        max_queue: image requests inside at once.
        is_image_request: (method, path) -> whether the request counts against ``max_queue``.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_queue: int,
                 is_image_request: Callable[[str, str], bool]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_queue = max_queue
        self.is_image_request = is_image_request
        self.inside = 0  # one event loop: no lock needed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = _declared_length(scope)
        if declared > limit:
            message = f"request body is {declared:,} bytes, larger than the limit of {limit:,} bytes (--max_body_mb)"
            await send_envelope(scope, receive, send, 413, message)
            return
        counted = self.is_image_request(scope["method"], scope["path"])
        if counted and self.inside >= self.max_queue:
            message = f"the service is busy ({self.max_queue} requests in progress, --max_queue); retry shortly"
            await send_envelope(scope, receive, send, 503, message, {"Retry-After": "1"})
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        if counted:
            self.inside += 1
        try:
            await self.app(scope, limited_receive, send)
        finally:
            if counted:
                self.inside -= 1
