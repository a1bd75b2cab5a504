"""Result types: a classification result with PaddleX's print / save_to_json / save_to_img contract."""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

import numpy as np
from PIL import Image

from .drawing import draw_label
from .fileio import atomic_save, atomic_write_json


class ClsResult:
    """Top-k classes of one image.

    Example:
        >>> for res in create_model(model_dir="output/best_model/inference").predict("cat.jpg"):
        ...     res.print()
        ...     res.save_to_json("./output/")
        ...     res.save_to_img("./output/")
    """

    def __init__(self, input_path: Optional[str], image: np.ndarray, class_ids: List[int], scores: List[float],
                 label_names: List[str], page_index: Optional[int] = None):
        self.input_path = input_path
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
        """A folder gets ``<stem>_res<suffix>``; a path with an extension is used as is."""
        if os.path.splitext(save_path)[1] and not os.path.isdir(save_path):
            return save_path
        stem = os.path.splitext(os.path.basename(self.input_path))[0] if self.input_path else "array"
        if self.page_index is not None:
            stem = f"{stem}_{self.page_index}"
        return os.path.join(save_path, f"{stem}_res{suffix}")

    def save_to_json(self, save_path: str, indent: int = 4, ensure_ascii: bool = False) -> str:
        path = self._target(save_path, ".json")
        atomic_write_json(path, self.json, indent=indent, ensure_ascii=ensure_ascii)
        return path

    def save_to_img(self, save_path: str) -> str:
        ext = os.path.splitext(self.input_path or "")[1].lower()
        ext = ext if ext in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
        path = self._target(save_path, ext)
        image = self.img["res"]
        fmt = "JPEG" if path.lower().endswith((".jpg", ".jpeg")) else None
        atomic_save(path, lambda tmp: image.save(tmp, format=fmt or Image.registered_extensions().get(
            os.path.splitext(path)[1].lower(), "PNG")))
        return path


def top_k(probs: np.ndarray, k: int):
    """Indices and values of the k largest entries of each row, largest first."""
    idx = np.argsort(-probs, axis=1)[:, :k]
    return idx, np.take_along_axis(probs, idx, axis=1)
