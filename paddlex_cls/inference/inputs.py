"""Turning what a user passes to predict into a list of image sources, each read only when it is needed.

Inputs: an image path, a folder (its images, recursively, sorted by path, as PaddleX walks it), an http(s) URL, a
numpy array (HWC uint8 BGR or BGRA as cv2 reads it, or 2-D gray: PaddleX's convention), the bytes of an image file,
or a list of those. Every file is decoded by ``preprocess.image_io`` (header checked against the pixel limit first).
Listing happens up front, so a missing file fails before any prediction and result names can be made unique.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Union
from urllib.parse import unquote, urlparse

import numpy as np

from ..errors import DatasetError
from ..preprocess.image_io import IMAGE_EXTS, MAX_PIXELS, ImageDecodeError, ImageTooLargeError, load_image
from .result_names import unique_stems

InputItem = Union[str, os.PathLike, np.ndarray, bytes]
_READABLE = "give a readable image (jpg, png, bmp, webp, tif)"


@dataclass
class Source:
    """One image to predict.

    Attributes:
        input_path: the path or URL as given; None for arrays and bytes.
        read: decodes it to RGB uint8 HWC; raises DatasetError when it cannot.
        from_folder: found by listing a folder (an unreadable one is skipped with a warning, not fatal).
        name: the stem its result files get, unique among the inputs of one call.
    """

    input_path: Optional[str]
    read: Callable[[], np.ndarray]
    from_folder: bool = False
    name: str = ""


def decode(source: Union[str, bytes], name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An RGB array from a path or bytes; DatasetError naming ``name`` when it is not a readable image."""
    try:
        return load_image(source, max_pixels)
    except ImageTooLargeError as e:
        raise DatasetError(f"input {name}: {e}", f"downscale it to at most {max_pixels:,} pixels, or (Python API) "
                           "raise paddlex_cls.preprocess.image_io.MAX_PIXELS if you trust the file") from None
    except ImageDecodeError as e:
        raise DatasetError(f"input {name}: {e}", _READABLE) from None
    except OSError as e:
        raise DatasetError(f"cannot read input {name} ({type(e).__name__}: {e})", _READABLE) from None


def _read_url(url: str) -> np.ndarray:
    from ..hub.download import DownloadError, fetch_bytes

    try:
        data = fetch_bytes(url)
    except DownloadError as e:
        raise DatasetError(str(e), "check the URL and the network, or download the image and give its path") \
            from None
    return decode(data, url)


def from_array(item: np.ndarray) -> np.ndarray:
    """RGB uint8 HWC from an array in PaddleX's convention: BGR, BGRA or 2-D gray, uint8."""
    if item.dtype != np.uint8 or not (item.ndim == 2 or (item.ndim == 3 and item.shape[2] in (3, 4))) \
            or 0 in item.shape:
        raise DatasetError(f"numpy input has shape {item.shape} and dtype {item.dtype}",
                           "pass an HWC uint8 BGR image array (as cv2.imread returns) or a 2-D uint8 gray one")
    if item.ndim == 2:
        return np.repeat(item[:, :, None], 3, axis=2)
    return np.ascontiguousarray(item[:, :, 2::-1])


def list_folder(folder: str) -> List[str]:
    """The image files under a folder (recursively), sorted by path."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in files if f.lower().endswith(IMAGE_EXTS))
    if not found:
        raise DatasetError(f"input folder {folder} has no images ({', '.join(IMAGE_EXTS)})",
                           "point Predict.input at images")
    return sorted(found)


def _file_source(path: str, from_folder: bool) -> Source:
    return Source(path, lambda: decode(path, path), from_folder)


def _sources(item: Any) -> List[Source]:
    if isinstance(item, np.ndarray):
        return [Source(None, lambda: from_array(item))]
    if isinstance(item, (bytes, bytearray)):
        data = bytes(item)
        return [Source(None, lambda: decode(data, "(bytes)"))]
    if not isinstance(item, (str, os.PathLike)):
        raise DatasetError(f"cannot predict on a {type(item).__name__}",
                           "give image paths, folders, URLs, numpy arrays or image file bytes")
    path = os.fspath(item)
    if path.startswith(("http://", "https://")):
        return [Source(path, lambda: _read_url(path))]
    if os.path.isdir(path):
        return [_file_source(p, True) for p in list_folder(path)]
    if os.path.isfile(path):
        return [_file_source(path, False)]
    raise DatasetError(f"input {path} does not exist", "give an image file, a folder, a URL or a list of them")


def _stem_of(source: Source) -> Optional[str]:
    if source.input_path is None:
        return None
    path = unquote(urlparse(source.input_path).path) if "://" in source.input_path else source.input_path
    return os.path.basename(path.rstrip("/")) or None


def expand_inputs(inputs: Union[InputItem, Iterable[InputItem]]) -> List[Source]:
    """Every image the input names, in order, each with a unique result name (see ``result_names``)."""
    single = isinstance(inputs, (str, os.PathLike, np.ndarray, bytes, bytearray, dict))
    items = [inputs] if single else list(inputs)
    sources = [s for item in items for s in _sources(item)]
    for source, name in zip(sources, unique_stems([_stem_of(s) for s in sources])):
        source.name = name
    return sources
