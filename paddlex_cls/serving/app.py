"""The FastAPI app: PaddleX's two endpoints and its error envelope, wrapped in the admission and access-log layers.

A request's own ``logId`` is echoed in an error answer when its body is a JSON object holding a string ``logId`` (as
PaddleX does for 422, 404 and 405); a success always gets a fresh one, as in PaddleX.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Dict, Optional

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from ..log import logger
from .access_log import AccessLog
from .admission import Admission, ASGIApp
from .errors import INTERNAL_ERROR, RequestError
from .protocol import HEALTH_PATH, INFER_PATH, InferRequest, error_body, health_body, validation_message
from .service import ClassificationService


async def _body_log_id(request: Request) -> Optional[str]:
    """The body's ``logId`` when the body was read and is a JSON object holding a string one."""
    try:
        body = await request.json()
    except Exception:  # no body, not JSON, or not readable any more: there is nothing to echo
        return None
    log_id = body.get("logId") if isinstance(body, dict) else None
    return log_id if isinstance(log_id, str) else None


async def _envelope(request: Request, status: int, message: str, echo: bool = True,
                    headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    log_id = await _body_log_id(request) if echo else None
    return JSONResponse(error_body(status, message, log_id), status_code=status, headers=headers)


def create_app(service: ClassificationService) -> FastAPI:
    """The app serving ``service``; closing the app (server shutdown) closes the service."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            service.close()

    app = FastAPI(title="paddlex_cls image classification", lifespan=lifespan)

    @app.get(HEALTH_PATH, operation_id="checkHealth")
    async def check_health() -> JSONResponse:
        return JSONResponse(health_body())

    @app.post(INFER_PATH, operation_id="infer")
    async def infer(request: InferRequest) -> JSONResponse:
        try:
            return JSONResponse(await service.classify(request))
        except RequestError:
            raise
        except Exception:  # a failure of ours: the client gets PaddleX's words, the log the traceback
            logger.exception("%s failed", INFER_PATH)
            raise RequestError(500, INTERNAL_ERROR) from None

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _envelope(request, 422, validation_message(exc.errors()))

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, exc: HTTPException) -> JSONResponse:
        # 404/405 from the router, 413 from a streamed body over the limit (unreadable now: nothing to echo)
        return await _envelope(request, exc.status_code, str(exc.detail), echo=exc.status_code != 413,
                               headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestError)
    async def on_request_error(request: Request, exc: RequestError) -> JSONResponse:
        return await _envelope(request, exc.status, exc.message)

    return app


def wrap(app: Any, service: ClassificationService) -> ASGIApp:
    """The app behind the admission limits and the access log (outermost, so that it sees the 413s and 503s)."""
    s = service.settings
    admitted = Admission(app, s.max_body_bytes, s.max_queue,
                         lambda method, path: method == "POST" and path == INFER_PATH)
    return AccessLog(admitted)
