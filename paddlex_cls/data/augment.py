"""The stronger augmentations of some recipes, as documented options (``Train.augment``):

- ``autoaugment``: the ImageNet AutoAugment policy (Cubuk et al. 2019), one random sub-policy per image.
- ``randaugment`` / ``timm_autoaugment``: RandAugment, 2 random ops at magnitude 9 (timm's ``rand-m9-mstd0.5``
  flavour is approximated by a magnitude jitter of 0.5).
- ``random_erasing``: erase a random rectangle after normalization (in transforms.py).
- ``mixup`` / ``cutmix``: batch-level mixing of images and one-hot labels (``mix_batch``).
"""
from __future__ import annotations

import random
from typing import Callable, Dict, Optional, Sequence, Tuple

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from ..errors import ConfigError

AUGMENTS = ("autoaugment", "randaugment", "timm_autoaugment", "random_erasing", "mixup", "cutmix")
_FILL = (128, 128, 128)


def _signed(v: float) -> float:
    return v if random.random() < 0.5 else -v


# op name -> function(img, magnitude in [0, 10])
_OPS: Dict[str, Callable[[Image.Image, float], Image.Image]] = {
    "ShearX": lambda im, m: im.transform(im.size, Image.AFFINE, (1, _signed(m * 0.03), 0, 0, 1, 0), fillcolor=_FILL),
    "ShearY": lambda im, m: im.transform(im.size, Image.AFFINE, (1, 0, 0, _signed(m * 0.03), 1, 0), fillcolor=_FILL),
    "TranslateX": lambda im, m: im.transform(im.size, Image.AFFINE,
                                             (1, 0, _signed(m * 0.045 * im.size[0]), 0, 1, 0), fillcolor=_FILL),
    "TranslateY": lambda im, m: im.transform(im.size, Image.AFFINE,
                                             (1, 0, 0, 0, 1, _signed(m * 0.045 * im.size[1])), fillcolor=_FILL),
    "Rotate": lambda im, m: im.rotate(_signed(m * 3), fillcolor=_FILL),
    "Color": lambda im, m: ImageEnhance.Color(im).enhance(1 + _signed(m * 0.09)),
    "Contrast": lambda im, m: ImageEnhance.Contrast(im).enhance(1 + _signed(m * 0.09)),
    "Brightness": lambda im, m: ImageEnhance.Brightness(im).enhance(1 + _signed(m * 0.09)),
    "Sharpness": lambda im, m: ImageEnhance.Sharpness(im).enhance(1 + _signed(m * 0.09)),
    "Posterize": lambda im, m: ImageOps.posterize(im, max(1, 8 - int(m * 0.4))),
    "Solarize": lambda im, m: ImageOps.solarize(im, 256 - int(m * 25.6)),
    "AutoContrast": lambda im, m: ImageOps.autocontrast(im),
    "Equalize": lambda im, m: ImageOps.equalize(im),
    "Invert": lambda im, m: ImageOps.invert(im),
}

# The ImageNet policy: pairs of (op, probability, magnitude).
_IMAGENET_POLICY: Tuple[Tuple[Tuple[str, float, int], Tuple[str, float, int]], ...] = (
    (("Posterize", 0.4, 8), ("Rotate", 0.6, 9)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)), (("Posterize", 0.6, 7), ("Posterize", 0.6, 6)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)), (("Equalize", 0.4, 4), ("Rotate", 0.8, 8)),
    (("Solarize", 0.6, 3), ("Equalize", 0.6, 7)), (("Posterize", 0.8, 5), ("Equalize", 1.0, 2)),
    (("Rotate", 0.2, 3), ("Solarize", 0.6, 8)), (("Equalize", 0.6, 8), ("Posterize", 0.4, 6)),
    (("Rotate", 0.8, 8), ("Color", 0.4, 0)), (("Rotate", 0.4, 9), ("Equalize", 0.6, 2)),
    (("Equalize", 0.0, 7), ("Equalize", 0.8, 8)), (("Invert", 0.6, 4), ("Equalize", 1.0, 8)),
    (("Color", 0.6, 4), ("Contrast", 1.0, 8)), (("Rotate", 0.8, 8), ("Color", 1.0, 2)),
    (("Color", 0.8, 8), ("Solarize", 0.8, 7)), (("Sharpness", 0.4, 7), ("Invert", 0.6, 8)),
    (("ShearX", 0.6, 5), ("Equalize", 1.0, 9)), (("Color", 0.4, 0), ("Equalize", 0.6, 3)),
    (("Equalize", 0.4, 7), ("Solarize", 0.2, 4)), (("Solarize", 0.6, 5), ("AutoContrast", 0.6, 5)),
    (("Invert", 0.6, 4), ("Equalize", 1.0, 8)), (("Color", 0.6, 4), ("Contrast", 1.0, 8)),
    (("Equalize", 0.8, 8), ("Equalize", 0.6, 3)),
)


class AutoAugment:
    def __call__(self, img: Image.Image) -> Image.Image:
        for name, prob, mag in random.choice(_IMAGENET_POLICY):
            if random.random() < prob:
                img = _OPS[name](img, mag)
        return img


class RandAugment:
    def __init__(self, num_ops: int = 2, magnitude: float = 9.0, magnitude_std: float = 0.0):
        self.num_ops, self.magnitude, self.magnitude_std = num_ops, magnitude, magnitude_std
        self.names = [n for n in _OPS if n != "Invert"]

    def __call__(self, img: Image.Image) -> Image.Image:
        for name in random.sample(self.names, self.num_ops):
            mag = self.magnitude + (random.gauss(0, self.magnitude_std) if self.magnitude_std else 0.0)
            img = _OPS[name](img, min(10.0, max(0.0, mag)))
        return img


def check_augment(names: Sequence[str]) -> None:
    unknown = [n for n in names if n not in AUGMENTS]
    if unknown:
        raise ConfigError(f"Train.augment has unknown name(s) {unknown}", f"choose from {', '.join(AUGMENTS)}, "
                          "e.g. -o Train.augment=[randaugment,mixup]")


def image_policy(names: Sequence[str]) -> Optional[Callable[[Image.Image], Image.Image]]:
    """The per-image policy named in ``names`` (at most one applies), or None."""
    check_augment(names)
    if "autoaugment" in names:
        return AutoAugment()
    if "timm_autoaugment" in names:
        return RandAugment(2, 9.0, 0.5)
    if "randaugment" in names:
        return RandAugment(2, 9.0)
    return None


def mix_batch(images: np.ndarray, labels: np.ndarray, num_classes: int, names: Sequence[str],
              rng: np.random.Generator, mixup_alpha: float = 0.8, cutmix_alpha: float = 1.0):
    """Mixup or CutMix (one of them, chosen per batch) -> (images, soft labels [N, C])."""
    one_hot = np.eye(num_classes, dtype=np.float32)[labels.reshape(-1)]
    choices = [n for n in ("mixup", "cutmix") if n in names]
    if not choices or len(images) < 2:
        return images, one_hot
    perm = rng.permutation(len(images))
    if rng.choice(choices) == "mixup":
        lam = float(rng.beta(mixup_alpha, mixup_alpha))
        mixed = lam * images + (1 - lam) * images[perm]
    else:
        lam = float(rng.beta(cutmix_alpha, cutmix_alpha))
        h, w = images.shape[2:]
        ch, cw = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
        cy, cx = rng.integers(h), rng.integers(w)
        y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
        mixed = images.copy()
        mixed[:, :, y0:y1, x0:x1] = images[perm][:, :, y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed.astype(np.float32), (lam * one_hot + (1 - lam) * one_hot[perm]).astype(np.float32)
