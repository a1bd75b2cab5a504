"""Training and evaluation transforms on RGB uint8 HWC arrays, derived from a model's preprocessing metadata.

The eval transform is built from ``preprocess.spec.eval_ops``, the same list ``inference.yml`` records and the
predictor reads, so training-time evaluation, ``evaluate`` and ``predict`` preprocess identically. The train
transform crops and resizes in one OpenCV call (no full-size intermediate), as PaddleClas does.
"""
from __future__ import annotations

import math
import random
from typing import Callable, List, Sequence, Tuple

import cv2
import numpy as np
from PIL import Image

from ..preprocess.ops import build_transform, interpolation_flag, normalize_to_chw
from ..preprocess.spec import Preprocess, eval_ops


class Compose:
    def __init__(self, ops: Sequence[Callable]):
        self.ops = list(ops)

    def __call__(self, img):
        for op in self.ops:
            img = op(img)
        return img


class RandomResizedCrop:
    """Crop a random area (``scale`` of the image) with a random aspect ratio, resized to ``size``."""

    def __init__(self, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation: str = "bilinear"):
        self.size, self.scale, self.ratio = size, scale, ratio
        self.interp = interpolation_flag(interpolation)

    def box(self, w: int, h: int, rng: random.Random) -> Tuple[int, int, int, int]:
        """(left, top, right, bottom) of the crop."""
        area = w * h
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(10):
            target = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            cw, ch = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
                return x, y, x + cw, y + ch
        side = min(w, h)  # fallback: the central square
        x, y = (w - side) // 2, (h - side) // 2
        return x, y, x + side, y + side

    def __call__(self, img: np.ndarray) -> np.ndarray:
        h, w = img.shape[:2]
        left, top, right, bottom = self.box(w, h, random)
        return cv2.resize(img[top:bottom, left:right], (self.size, self.size), interpolation=self.interp)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return img[:, ::-1] if random.random() < self.p else img


class PilPolicy:
    """Runs a PIL-based augmentation policy (AutoAugment, RandAugment) on an array."""

    def __init__(self, policy: Callable[[Image.Image], Image.Image]):
        self.policy = policy

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return np.asarray(self.policy(Image.fromarray(np.ascontiguousarray(img))))


class RandomErasing:
    """Erase a random rectangle of a normalized CHW array with noise (applied after Normalize)."""

    def __init__(self, p: float = 0.25, scale=(0.02, 1 / 3), ratio=(0.3, 3.3)):
        self.p, self.scale, self.ratio = p, scale, ratio

    def __call__(self, arr: np.ndarray) -> np.ndarray:
        if random.random() >= self.p:
            return arr
        _, h, w = arr.shape
        for _ in range(10):
            area = h * w * random.uniform(*self.scale)
            aspect = math.exp(random.uniform(math.log(self.ratio[0]), math.log(self.ratio[1])))
            eh, ew = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < eh < h and 0 < ew < w:
                y, x = random.randint(0, h - eh), random.randint(0, w - ew)
                arr = arr.copy()
                arr[:, y:y + eh, x:x + ew] = np.random.standard_normal((arr.shape[0], eh, ew)).astype(np.float32)
                return arr
        return arr


def eval_transform(pre: Preprocess, input_size: int | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """Resize short side -> center crop -> normalize -> CHW, exactly as ``inference.yml`` records it."""
    return build_transform(eval_ops(pre, input_size))


def train_transform(pre: Preprocess, input_size: int | None = None, augment: Sequence[str] = (),
                    crop_scale: float = 0.08, flip: bool = True) -> Compose:
    """Random-resized crop -> [horizontal flip] -> [auto/randaugment] -> normalize into CHW -> [random erasing]."""
    from .augment import image_policy  # imported here: only recipes with strong augmentation need it

    size = input_size or pre.input_size
    ops: List[Callable] = [RandomResizedCrop(size, scale=(crop_scale, 1.0), interpolation=pre.interpolation)]
    if flip:
        ops.append(RandomHorizontalFlip())
    policy = image_policy(augment)
    if policy is not None:
        ops.append(PilPolicy(policy))
    ops.append(normalize_to_chw(pre.mean, pre.std))
    if "random_erasing" in augment:
        ops.append(RandomErasing())
    return Compose(ops)
