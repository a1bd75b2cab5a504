"""Reading images the same way everywhere (check_dataset, training, evaluation, prediction, serving).

Decoding follows PaddleX: OpenCV's colour decode (EXIF orientation applied, 16-bit samples scaled to 8 bits, alpha
dropped, palette and grayscale expanded), then BGR -> RGB. Before any pixel is decoded the header is read (PNG and
JPEG by ``image_header``, other formats by Pillow) and an image above ``MAX_PIXELS`` is refused: a 633-byte JPEG may
claim 30,000 x 30,000 pixels, and decoding it first would allocate gigabytes. Formats OpenCV cannot decode (GIF) go
through Pillow with the same conventions.
"""
from __future__ import annotations

import io
import os
import re
from typing import Tuple, Union

import cv2
import numpy as np
from PIL import Image, ImageOps

from .image_header import header_size

# PaddleX's image suffixes, plus GIF (decoded through Pillow)
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".dib", ".webp", ".tif", ".tiff", ".pbm", ".pgm", ".ppm", ".pnm",
              ".sr", ".ras", ".gif")
# 178,956,970 is Pillow's own decompression-bomb limit (and PaddleX's refusal threshold); 100 MP covers any photo.
MAX_PIXELS = 100_000_000
Source = Union[str, os.PathLike, bytes]


class ImageDecodeError(ValueError):
    """The bytes are not a readable image, or the image is larger than allowed. The message says which."""


class ImageTooLargeError(ImageDecodeError):
    """The header declares more pixels than allowed; nothing was decoded."""


def _too_large(pixels: str, max_pixels: int) -> ImageTooLargeError:
    return ImageTooLargeError(f"image is {pixels}, above the limit of {max_pixels:,} pixels "
                            "(paddlex_cls.preprocess.image_io.MAX_PIXELS)")


def _open_header(source: Source, max_pixels: int) -> Image.Image:
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else os.fspath(source)
    try:
        return Image.open(stream)
    except FileNotFoundError:
        raise
    except Image.DecompressionBombError as e:  # Pillow's own limit (2 x 89 MP) stops Image.open itself
        found = re.search(r"\((\d+) pixels\)", str(e))
        raise _too_large(f"{int(found.group(1)):,} pixels" if found else "larger than Pillow opens",
                         max_pixels) from None
    except Exception as e:  # Pillow raises UnidentifiedImageError, OSError, SyntaxError... for bad headers
        raise ImageDecodeError(f"not an image ({type(e).__name__}: {e})") from None


def image_size(source: Source, max_pixels: int = MAX_PIXELS) -> Tuple[int, int]:
    """(width, height) from the header only; refuses an empty or too large image."""
    with _open_header(source, max_pixels) as img:
        size = img.size
    _check_size(size, max_pixels)
    return size


def checked_size(head: bytes, source: Source, max_pixels: int = MAX_PIXELS) -> Tuple[int, int]:
    """:func:`image_size` from ``head`` (the first bytes of ``source``) when it is a PNG or JPEG header
    (``image_header``, no Pillow), else from ``source`` through Pillow."""
    size = header_size(head)
    if size is None:
        return image_size(source, max_pixels)
    _check_size(size, max_pixels)
    return size


def _check_size(size: Tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageDecodeError(f"image has size {width}x{height}")
    if width * height > max_pixels:
        raise _too_large(f"{width}x{height} = {width * height:,} pixels", max_pixels)


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    with open(source, "rb") as f:
        return f.read()


def _decode_with_pillow(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        img = ImageOps.exif_transpose(img)
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(img, dtype=np.uint32)
            arr = (arr >> 8 if arr.max(initial=0) > 255 else arr).astype(np.uint8)
            return np.repeat(arr[:, :, None], 3, axis=2)
        return np.asarray(img.convert("RGB"))


def load_image(source: Source, max_pixels: int = MAX_PIXELS, reduce: int = 1) -> np.ndarray:
    """Decode an image file or its bytes to an RGB uint8 HWC array.

    Args:
        source: a path or the file's bytes.
        max_pixels: refuse images whose header declares more pixels than this.
        reduce: 2, 4 or 8 decodes a JPEG at that fraction of its size (libjpeg scaling, much cheaper), for
            training at a resolution far below the stored one; other formats are decoded whole.

    Raises:
        ImageDecodeError: unreadable, truncated, empty or too large.
        FileNotFoundError / OSError: the file cannot be opened.
    """
    data = _read_bytes(source)
    checked_size(data, data, max_pixels)
    flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
             8: cv2.IMREAD_REDUCED_COLOR_8}[reduce]
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is not None:
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        return _decode_with_pillow(data)
    except Exception as e:  # Pillow raises many types for a broken file
        raise ImageDecodeError(f"cannot decode the image ({type(e).__name__}: {e})") from None
