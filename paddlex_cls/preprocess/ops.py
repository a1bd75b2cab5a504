"""The eval preprocessing ops of ``inference.yml`` and the transform built from a list of them.

Each op works on an RGB HWC array the way PaddleX's predictor does (OpenCV resize, integer crop offsets, float32
normalisation), so an export predicts the same scores here and in PaddleX. Sizes are validated before anything is
allocated: an ``inference.yml`` asking for a 100,000-pixel resize is refused, not obeyed.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Sequence

import cv2
import numpy as np

MAX_SIDE = 8192  # no classifier runs above this; larger values in inference.yml are mistakes or attacks
INTERPOLATIONS = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "linear": cv2.INTER_LINEAR,
                  "bicubic": cv2.INTER_CUBIC, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA,
                  "lanczos": cv2.INTER_LANCZOS4, "lanczos4": cv2.INTER_LANCZOS4}
Op = Callable[[np.ndarray], np.ndarray]


class OpError(ValueError):
    """An op description that cannot be built (unknown op, bad argument); the message names the op and key."""


def _side(op: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise OpError(f"{op}.{key} must be an integer, got {value!r}")
    if not 1 <= int(value) <= MAX_SIDE:
        raise OpError(f"{op}.{key} must be between 1 and {MAX_SIDE}, got {value}")
    return int(value)


def interpolation_flag(value: Any) -> int:
    """An OpenCV interpolation flag from a name in any case (``bilinear``, ``LINEAR``, ``INTER_CUBIC``) or an int."""
    if isinstance(value, int) and not isinstance(value, bool) and value in INTERPOLATIONS.values():
        return value
    name = str(value).lower().removeprefix("inter_")
    if name not in INTERPOLATIONS:
        raise OpError(f"ResizeImage.interpolation {value!r} is unknown; use one of {', '.join(INTERPOLATIONS)}")
    return INTERPOLATIONS[name]


def resize_short(size: int, interpolation: int = cv2.INTER_LINEAR) -> Op:
    """Resize so the short side equals ``size``, keeping the aspect ratio (sides rounded half to even, as PaddleX)."""
    def op(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        scale = size / min(h, w)
        new_w, new_h = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
        if (new_w, new_h) == (w, h):
            return img
        return cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    return op


def resize_to(width: int, height: int, interpolation: int = cv2.INTER_LINEAR) -> Op:
    """Resize to a fixed size (``ResizeImage.size``), ignoring the aspect ratio."""
    return lambda img: cv2.resize(img, (width, height), interpolation=interpolation)


def center_crop(width: int, height: int) -> Op:
    """Crop the centre; an image smaller than the crop is first resized up so the crop is always full."""
    def op(img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        if w < width or h < height:
            img = resize_short(max(width, height))(img)
            h, w = img.shape[:2]
        left, top = (w - width) // 2, (h - height) // 2
        return img[top:top + height, left:left + width]
    return op


def normalize(mean: Sequence[float], std: Sequence[float], scale: float = 1 / 255) -> Op:
    """uint8 HWC -> float32 HWC: ``(x * scale - mean) / std`` per channel."""
    mean_a = np.asarray(mean, dtype=np.float32).reshape(1, 1, -1)
    std_a = np.asarray(std, dtype=np.float32).reshape(1, 1, -1)
    scale_f = np.float32(scale)
    return lambda img: (img.astype(np.float32) * scale_f - mean_a) / std_a


def to_chw(img: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def _pair(op: str, key: str, value: Any) -> tuple:
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise OpError(f"{op}.{key} must be one size or [width, height], got {value!r}")
        return _side(op, key, value[0]), _side(op, key, value[1])
    side = _side(op, key, value)
    return side, side


def _resize(args: Dict[str, Any]) -> Op:
    interp = interpolation_flag(args.get("interpolation", "bilinear"))
    if args.get("resize_short") is not None:
        return resize_short(_side("ResizeImage", "resize_short", args["resize_short"]), interp)
    if args.get("size") is not None:  # PaddleClas/PaddleX also write a fixed size
        return resize_to(*_pair("ResizeImage", "size", args["size"]), interp)
    raise OpError("ResizeImage needs resize_short or size")


def _crop(args: Dict[str, Any]) -> Op:
    if "size" not in args:
        raise OpError("CropImage needs size")
    return center_crop(*_pair("CropImage", "size", args["size"]))


def _normalize(args: Dict[str, Any]) -> Op:
    mean, std = args.get("mean", (0.485, 0.456, 0.406)), args.get("std", (0.229, 0.224, 0.225))
    if len(mean) != 3 or len(std) != 3 or any(float(s) == 0 for s in std):
        raise OpError(f"NormalizeImage needs 3 means and 3 non-zero stds, got mean={mean!r}, std={std!r}")
    scale = args.get("scale", 1 / 255)
    if isinstance(scale, str):  # PaddleClas writes "1.0/255.0"
        num, _, den = scale.partition("/")
        scale = float(num) / float(den or 1)
    return normalize(mean, std, float(scale))


# op name in inference.yml -> builder from its arguments
OPS: Dict[str, Callable[[Dict[str, Any]], Op]] = {
    "ResizeImage": _resize,
    "CropImage": _crop,
    "NormalizeImage": _normalize,
    "ToCHWImage": lambda args: to_chw,
}


class Transform:
    """A chain of ops built from ``inference.yml``'s ``transform_ops`` list."""

    def __init__(self, ops: List[Op]):
        self.ops = ops

    def __call__(self, img: np.ndarray) -> np.ndarray:
        for op in self.ops:
            img = op(img)
        return img


def build_transform(transform_ops: List[Dict[str, Any]]) -> Transform:
    """The transform a ``transform_ops`` list describes; raises OpError naming an unknown op or a bad argument."""
    built = []
    for item in transform_ops:
        if not isinstance(item, dict) or len(item) != 1:
            raise OpError(f"each transform op must be a one-key mapping like {{ResizeImage: {{...}}}}, got {item!r}")
        (name, args), = item.items()
        if name not in OPS:
            raise OpError(f"unsupported transform {name!r}; supported: {', '.join(OPS)}")
        if args is not None and not isinstance(args, dict):
            raise OpError(f"{name} arguments must be a mapping, got {args!r}")
        built.append(OPS[name](args or {}))
    return Transform(built)
