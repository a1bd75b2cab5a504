"""The CPU work of a request around inference, run on the decoding threads: bytes -> the model's input tensor, and
the result -> the labelled JPEG. OpenCV and NumPy release the GIL, so requests decode in parallel.
"""
from __future__ import annotations

import base64
import io
import re
from typing import Callable, Tuple

import numpy as np

from ..preprocess.image_io import ImageDecodeError, image_size, load_image
from ..results import ClsResult
from .errors import RequestError

Transform = Callable[[np.ndarray], np.ndarray]
JPEG_QUALITY = 75  # Pillow's default, which PaddleX's visualisation uses
_OBJECT_REPR = re.compile(r" ?<_io\.BytesIO object at 0x[0-9a-fA-F]+>")


def decode(data: bytes, max_pixels: int) -> np.ndarray:
    """RGB uint8 HWC of an image file's bytes; RequestError 413 above ``max_pixels``, 400 when not readable."""
    try:
        width, height = image_size(data, max_pixels=1 << 62)  # the header only: refuse before allocating
        if width * height > max_pixels:
            raise RequestError(413, f"image is {width}x{height} = {width * height:,} pixels, above the limit of "
                                    f"{max_pixels:,}")
        return load_image(data, max_pixels=max_pixels)
    except ImageDecodeError as e:
        reason = _OBJECT_REPR.sub("", str(e))  # Pillow names its in-memory file by its address
        raise RequestError(400, f"image cannot be decoded: {reason}") from None


def prepare(data: bytes, transform: Transform, max_pixels: int) -> Tuple[np.ndarray, np.ndarray]:
    """(RGB image, float32 CHW model input) of an image file's bytes."""
    rgb = decode(data, max_pixels)
    return rgb, transform(rgb)


def visualisation_b64(rgb: np.ndarray, class_ids, scores, names) -> str:
    """Base64 of the JPEG of the image with its top-1 name and score drawn (``ClsResult.img``, as PaddleX)."""
    image = ClsResult(None, rgb, list(class_ids), list(scores), list(names)).img["res"]
    with io.BytesIO() as buf:
        image.save(buf, format="JPEG", quality=JPEG_QUALITY)
        return base64.b64encode(buf.getvalue()).decode("ascii")
