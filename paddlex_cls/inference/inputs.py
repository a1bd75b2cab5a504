"""Turning what a user passes to predict into decoded images.

Inputs: an image path, a folder (its images, sorted), an http(s) URL, a numpy array (HWC uint8, BGR as cv2 reads
it: PaddleX's convention), or a list of those. Every image is decoded by ``preprocess.image_io`` (header checked
against the pixel limit first).
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from typing import Iterable, Iterator, Optional, Tuple, Union

import numpy as np

from ..errors import DatasetError
from ..preprocess.image_io import IMAGE_EXTS, ImageDecodeError, load_image

URL_TIMEOUT = 20
InputItem = Union[str, os.PathLike, np.ndarray]


def _read_url(url: str) -> np.ndarray:
    try:
        with urllib.request.urlopen(url, timeout=URL_TIMEOUT) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DatasetError(f"cannot download input {url}: {e}", "check the network or give a local file") from None
    return decode(data, url)


def decode(source: Union[str, bytes], name: str) -> np.ndarray:
    """An RGB array from a path or bytes; DatasetError naming ``name`` when it is not a readable image."""
    try:
        return load_image(source)
    except ImageDecodeError as e:
        raise DatasetError(f"input {name}: {e}", "give a readable image (jpg, png, bmp, webp, tif)") from None
    except OSError as e:
        raise DatasetError(f"cannot read input {name} ({type(e).__name__}: {e})", "give a readable image") from None


def _from_array(item: np.ndarray) -> np.ndarray:
    if item.ndim != 3 or item.shape[2] not in (3, 4) or item.dtype != np.uint8:
        raise DatasetError(f"numpy input has shape {item.shape} and dtype {item.dtype}",
                           "pass an HWC uint8 BGR image array (as cv2.imread returns)")
    return np.ascontiguousarray(item[:, :, 2::-1])


def list_folder(folder: str) -> list:
    """The image files of a folder, sorted by name."""
    files = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))
    if not files:
        raise DatasetError(f"input folder {folder} has no images ({', '.join(IMAGE_EXTS)})",
                           "point Predict.input at images")
    return [os.path.join(folder, f) for f in files]


def iter_inputs(inputs: Union[InputItem, Iterable[InputItem]]) -> Iterator[Tuple[Optional[str], np.ndarray]]:
    """Yield (input path or URL, or None for arrays; RGB image) for every image the input names."""
    items = [inputs] if isinstance(inputs, (str, os.PathLike, np.ndarray)) else list(inputs)
    for item in items:
        if isinstance(item, np.ndarray):
            yield None, _from_array(item)
            continue
        item = os.fspath(item)
        if item.startswith(("http://", "https://")):
            yield item, _read_url(item)
        elif os.path.isdir(item):
            for path in list_folder(item):
                yield path, decode(path, path)
        elif os.path.isfile(item):
            yield item, decode(item, item)
        else:
            raise DatasetError(f"input {item} does not exist", "give an image file, a folder, a URL or a list")
