"""Result types: a classification result with PaddleX's print / save_to_json / save_to_img contract.

Saved files appear whole (written beside the target, then renamed) but are not flushed to disk one by one: an fsync
per file made saving cost more than predicting. A caller that saves many results calls :func:`sync_saved` once at
the end to make them durable.
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
from PIL import Image

from .drawing import draw_label
from .fileio import atomic_path

IMAGE_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".bmp": "BMP"}


def sync_saved() -> None:
    """Make every file saved so far durable, in one call (``os.sync``; a no-op where the OS has none)."""
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()


class ClsResult:
    """Top-k classes of one image.

    Example:
        >>> for res in create_model(model_dir="output/best_model/inference").predict("cat.jpg"):
        ...     res.print()
        ...     res.save_to_json("./output/")
        ...     res.save_to_img("./output/")
    """

    def __init__(self, input_path: Optional[str], image: np.ndarray, class_ids: List[int], scores: List[float],
                 label_names: List[str], page_index: Optional[int] = None, name: Optional[str] = None):
        self.input_path = input_path
        self.name = name  # stem of saved files, unique among one predict call's inputs (inference.result_names)
        self.image = image
        self.page_index = page_index
        self.class_ids = [int(c) for c in class_ids]
        self.scores = [round(float(s), 5) for s in scores]
        self.label_names = list(label_names)

    @property
    def top1(self) -> int:
        return self.class_ids[0]

    def to_dict(self) -> Dict[str, Any]:
        return {"input_path": self.input_path, "page_index": self.page_index, "class_ids": self.class_ids,
                "scores": self.scores, "label_names": self.label_names}

    @property
    def json(self) -> Dict[str, Any]:
        """``{"res": {...}}``, as PaddleX's results expose it."""
        return {"res": self.to_dict()}

    @property
    def img(self) -> Dict[str, Image.Image]:
        """``{"res": PIL image with "label score" drawn top-left}``."""
        if self.label_names:
            text = f"{self.label_names[0]} {self.scores[0]:.2f}"
        else:
            text = f"{self.class_ids[0]} {self.scores[0]:.2f}"
        return {"res": draw_label(Image.fromarray(self.image), text)}

    def print(self, json_format: bool = False, indent: int = 4, ensure_ascii: bool = False) -> None:
        if json_format:
            print(json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii))
        else:
            print(self.json)

    def __repr__(self) -> str:
        return f"ClsResult({self.to_dict()})"

    def _target(self, save_path: str, suffix: str) -> str:
        """A folder gets ``<name>_res<suffix>``; a path with an extension is used as is."""
        if os.path.splitext(save_path)[1] and not os.path.isdir(save_path):
            return save_path
        stem = self.name or (os.path.splitext(os.path.basename(self.input_path))[0] if self.input_path else "array")
        if self.page_index is not None:
            stem = f"{stem}_{self.page_index}"
        return os.path.join(save_path, f"{stem}_res{suffix}")

    def save_to_json(self, save_path: str, indent: int = 4, ensure_ascii: bool = False) -> str:
        """Write ``<name>_res.json`` into the folder ``save_path`` (or to ``save_path`` itself); returns the path."""
        path = self._target(save_path, ".json")
        text = json.dumps(self.json, indent=indent, ensure_ascii=ensure_ascii) + "\n"
        with atomic_path(path, durable=False) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def save_to_img(self, save_path: str) -> str:
        """Write the image with its top-1 label as ``<name>_res.<ext>`` (the input's jpg/png/bmp, else png)."""
        ext = os.path.splitext(self.input_path or "")[1].lower()
        path = self._target(save_path, ext if ext in IMAGE_FORMATS else ".png")
        fmt, options = _image_format(path)
        image = self.img["res"]
        with atomic_path(path, durable=False) as tmp:
            image.save(tmp, format=fmt, **options)
        return path


def _image_format(path: str) -> Tuple[str, Dict[str, Any]]:
    fmt = IMAGE_FORMATS.get(os.path.splitext(path)[1].lower()) or \
        Image.registered_extensions().get(os.path.splitext(path)[1].lower(), "PNG")
    return fmt, ({"compress_level": 1} if fmt == "PNG" else {})  # zlib level 1: a fraction of the default's time


def top_k(probs: np.ndarray, k: int) -> Tuple[np.ndarray, np.ndarray]:
    """Indices and values of the k largest entries of each row, largest first.

    The order is PaddleX's (``argsort`` ascending, reversed), so exact ties come out as PaddleX lists them.
    """
    idx = np.ascontiguousarray(np.argsort(probs, axis=1)[:, ::-1][:, :k])
    return idx, np.take_along_axis(probs, idx, axis=1)
