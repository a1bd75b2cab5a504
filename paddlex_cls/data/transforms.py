"""Image transforms on PIL images / numpy arrays, and the train/eval presets derived from a model's metadata.

The eval preset is exactly what ``inference.yml`` describes (ResizeImage -> CropImage -> NormalizeImage ->
ToCHWImage), and the predictor runs this same code, so training-time evaluation, ``evaluate`` and ``predict``
preprocess identically.
"""
from __future__ import annotations

import math
import random
from typing import Callable, List, Sequence, Tuple

import numpy as np
from PIL import Image

from ..preprocess.spec import Preprocess, eval_sizes

_INTERP = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "nearest": Image.NEAREST}


class Compose:
    def __init__(self, ops: Sequence[Callable]):
        self.ops = list(ops)

    def __call__(self, img):
        for op in self.ops:
            img = op(img)
        return img


class ResizeShort:
    """Resize so the short side equals ``size``, keeping the aspect ratio."""

    def __init__(self, size: int, interpolation: str = "bilinear"):
        self.size, self.interp = size, _INTERP[interpolation]

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        scale = self.size / min(w, h)
        new = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        return img if new == (w, h) else img.resize(new, self.interp)


class CenterCrop:
    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        if w < self.size or h < self.size:  # tiny inputs: grow first so the crop is always full
            img = ResizeShort(self.size)(img)
            w, h = img.size
        left, top = (w - self.size) // 2, (h - self.size) // 2
        return img.crop((left, top, left + self.size, top + self.size))


class RandomResizedCrop:
    """Crop a random area (``scale`` of the image) with a random aspect ratio, resized to ``size``."""

    def __init__(self, size: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), interpolation: str = "bilinear"):
        self.size, self.scale, self.ratio, self.interp = size, scale, ratio, _INTERP[interpolation]

    def _box(self, w: int, h: int, rng: random.Random) -> Tuple[int, int, int, int]:
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

    def __call__(self, img: Image.Image) -> Image.Image:
        box = self._box(*img.size, random)
        return img.resize((self.size, self.size), self.interp, box=box)


class RandomHorizontalFlip:
    def __init__(self, p: float = 0.5):
        self.p = p

    def __call__(self, img: Image.Image) -> Image.Image:
        return img.transpose(Image.FLIP_LEFT_RIGHT) if random.random() < self.p else img


class Normalize:
    """uint8 HWC -> float32 HWC: ``(x / 255 - mean) / std``."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]):
        self.mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
        self.std = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)

    def __call__(self, img) -> np.ndarray:
        arr = np.asarray(img, dtype=np.float32) / 255.0
        return (arr - self.mean) / self.std


def to_chw(arr: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


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


def load_rgb(path: str) -> Image.Image:
    with Image.open(path) as img:
        return img.convert("RGB")


def eval_transform(pre: Preprocess, input_size: int | None = None) -> Compose:
    """Resize short side -> center crop -> normalize -> CHW."""
    sizes = eval_sizes(pre, input_size)
    return Compose([ResizeShort(sizes.resize_short, pre.interpolation), CenterCrop(sizes.crop),
                    Normalize(pre.mean, pre.std), to_chw])


def train_transform(pre: Preprocess, input_size: int | None = None, augment: Sequence[str] = (),
                    crop_scale: float = 0.08, flip: bool = True) -> Compose:
    """Random-resized crop -> [horizontal flip] -> [auto/randaugment] -> normalize -> CHW -> [random erasing]."""
    from .augment import image_policy  # imported here: only recipes with strong augmentation need it

    size = input_size or pre.input_size
    ops: List[Callable] = [RandomResizedCrop(size, scale=(crop_scale, 1.0), interpolation=pre.interpolation)]
    if flip:
        ops.append(RandomHorizontalFlip())
    policy = image_policy(augment)
    if policy is not None:
        ops.append(policy)
    ops += [Normalize(pre.mean, pre.std), to_chw]
    if "random_erasing" in augment:
        ops.append(RandomErasing())
    return Compose(ops)
