"""The one exception of the request path: an HTTP status and a message for the client."""
from __future__ import annotations


class RequestError(Exception):
    """A request that cannot be answered with a result; the service answers the envelope with this status.

    Args:
        status: 400 bad image, 413 too large, 503 overloaded, 500 our own failure.
        message: what was wrong, for the client (never the image data itself).
    """

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


INTERNAL_ERROR = "Internal server error"  # PaddleX's words for a failure of its own
