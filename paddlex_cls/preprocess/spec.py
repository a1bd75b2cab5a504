"""A model's preprocessing metadata and the eval ops derived from it.

``eval_ops`` is the single source of the eval preprocessing: the eval transform of training and ``evaluate``, the
``inference.yml`` that export writes, and the predictor that reads it all use the list it returns.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocess:
    """How images are fed to a model at its native resolution.

    Attributes:
        input_size: side of the square crop the model is trained and evaluated at.
        resize_short: eval resize of the short side before the center crop.
        interpolation: ``bilinear`` or ``bicubic``.
        mean: per-channel mean of images scaled to [0, 1].
        std: per-channel std of images scaled to [0, 1].
        size_multiple: input sizes must be a multiple of this (e.g. patch * window for Swin).
        min_size: smallest input size the architecture accepts.
        fixed_size: True when the architecture only runs at ``input_size`` (e.g. learned position tables).
    """

    input_size: int = 224
    resize_short: int = 256
    interpolation: str = "bilinear"
    mean: Tuple[float, float, float] = IMAGENET_MEAN
    std: Tuple[float, float, float] = IMAGENET_STD
    size_multiple: int = 1
    min_size: int = 32
    fixed_size: bool = False


@dataclass(frozen=True)
class EvalSizes:
    """The eval resize of the short side and the crop, for the input size actually used."""

    resize_short: int
    crop: int


def eval_sizes(pre: Preprocess, input_size: Optional[int] = None) -> EvalSizes:
    """Keep the model's resize-to-crop ratio when running at another input size (e.g. 256/224 at 32 -> 37/32)."""
    crop = input_size or pre.input_size
    return EvalSizes(int(round(crop * pre.resize_short / pre.input_size)), crop)


def eval_ops(pre: Preprocess, input_size: Optional[int] = None) -> List[Dict[str, Any]]:
    """The eval preprocessing as ``inference.yml`` writes it: resize short side, center crop, normalize, CHW."""
    sizes = eval_sizes(pre, input_size)
    resize: Dict[str, Any] = {"resize_short": sizes.resize_short}
    if pre.interpolation != "bilinear":
        resize["interpolation"] = pre.interpolation
    return [
        {"ResizeImage": resize},
        {"CropImage": {"size": sizes.crop}},
        {"NormalizeImage": {"mean": list(pre.mean), "std": list(pre.std), "scale": 1.0 / 255.0, "order": "",
                            "channel_num": 3}},
        {"ToCHWImage": None},
    ]
