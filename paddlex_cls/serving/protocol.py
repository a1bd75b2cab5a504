"""PaddleX's serving protocol for image classification: the request model and the response envelopes.

The request model is PaddleX's own declaration, so FastAPI validates it the same way and a malformed request gets
the same 422 text (``"3"`` is taken as 3, ``0`` is refused, other keys are ignored). Every answer is the envelope
``{"logId", "errorCode", "errorMsg"}``; a success adds ``result`` and has errorCode 0 and errorMsg "Success".
"""
from __future__ import annotations

import json
import uuid
from typing import Annotated, Any, Dict, List, Optional, Sequence, Union

from pydantic import BaseModel, Field

INFER_PATH = "/image-classification"
HEALTH_PATH = "/health"


class InferRequest(BaseModel):
    """``image``: base64 of the file's bytes, or an http(s) URL; ``topk`` and ``visualize`` override the defaults."""

    image: str
    topk: Optional[Annotated[int, Field(gt=0)]] = None
    visualize: Optional[bool] = None


def new_log_id() -> str:
    return str(uuid.uuid4())


def success_body(categories: List[Dict[str, Any]], image_b64: Optional[str]) -> Dict[str, Any]:
    """The 200 answer; ``result.image`` is left out when there is no image, as PaddleX does."""
    result: Dict[str, Any] = {"categories": categories}
    if image_b64 is not None:
        result["image"] = image_b64
    return {"logId": new_log_id(), "result": result, "errorCode": 0, "errorMsg": "Success"}


def error_body(status: int, message: str, log_id: Optional[str] = None) -> Dict[str, Any]:
    """An error answer: errorCode is the HTTP status, errorMsg says what was wrong."""
    return {"logId": log_id or new_log_id(), "errorCode": status, "errorMsg": message}


def health_body() -> Dict[str, Any]:
    return {"logId": new_log_id(), "errorCode": 0, "errorMsg": "Healthy"}


def _dotted(loc: Sequence[Union[str, int]]) -> str:
    """``("body", "image")`` -> ``body.image``; ``("body", 0)`` -> ``body[0]`` (PaddleX's rendering)."""
    text = ""
    for i, part in enumerate(loc):
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if i else str(part)
    return text


def validation_message(errors: Sequence[Dict[str, Any]]) -> str:
    """The 422 errorMsg: a JSON list of ``{"type", "loc", "msg"}``, exactly as PaddleX writes it."""
    return json.dumps([{"type": e["type"], "loc": _dotted(e["loc"]), "msg": e["msg"]} for e in errors])


def categories(ids: Sequence[int], scores: Sequence[float], labels: Sequence[str]) -> List[Dict[str, Any]]:
    """``[{"id", "name", "score"}]``; a class without a name in ``label_list`` is named by its id, as in PaddleX."""
    return [{"id": int(i), "name": labels[i] if i < len(labels) else str(i), "score": float(s)}
            for i, s in zip(ids, scores)]
