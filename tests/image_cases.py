"""Image files that exercise every decode path: sizes and aspect ratios, grayscale, RGBA, palette, 16-bit, EXIF.

Each case is written by ``write_cases(folder)``; ``expected_rgb(path, case)`` gives the RGB array the documented
decode rules promise for it (PaddleX's OpenCV decode), computed independently with Pillow and numpy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import cv2
import numpy as np
from PIL import Image

# name -> (width, height) of the stored pixels (before EXIF rotation)
SIZES = {"square": (64, 64), "wide": (300, 200), "tall": (45, 40), "odd": (55, 40), "thin": (400, 37),
         "large": (640, 480)}


def _pattern(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth gradient plus noise: resizing it exercises interpolation, not just flat colour."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 / max(1, width - 1), yy * 255 / max(1, height - 1),
                     (xx + yy) * 127 / max(1, width + height - 2)], axis=2)
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


def _exif_jpeg(path: Path, rgb: np.ndarray, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(rgb).save(path, quality=95, exif=exif.tobytes())


def write_cases(folder: Path) -> Dict[str, Path]:
    """Write every case into ``folder``; returns {file name: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, (w, h)) in enumerate(SIZES.items()):
        rgb = _pattern(w, h, i)
        Image.fromarray(rgb).save(folder / f"{name}.jpg", quality=90)
        Image.fromarray(rgb).save(folder / f"{name}.png")
    rgb = _pattern(70, 50, 7)
    gray = rgb[:, :, 0]
    Image.fromarray(gray, "L").save(folder / "gray.png")
    Image.fromarray(np.dstack([gray, rgb[:, :, 1]]), "LA").save(folder / "gray_alpha.png")
    Image.fromarray(np.dstack([rgb, rgb[:, :, 2]]), "RGBA").save(folder / "rgba.png")
    Image.fromarray(rgb).quantize(colors=32).save(folder / "palette.png")
    pal = Image.fromarray(rgb).quantize(colors=16)
    pal.info["transparency"] = 0
    pal.save(folder / "palette_trns.png", transparency=0)
    cv2.imwrite(str(folder / "rgb16.png"), (rgb[:, :, ::-1].astype(np.uint16) * 257 + 100))
    cv2.imwrite(str(folder / "gray16.png"), gray.astype(np.uint16) * 256 + 255)
    Image.fromarray(rgb).save(folder / "image.bmp")
    Image.fromarray(rgb).save(folder / "lossless.webp", lossless=True)
    for orientation in (3, 6, 8):
        _exif_jpeg(folder / f"exif{orientation}.jpg", _pattern(60, 40, orientation), orientation)
    return {p.name: p for p in sorted(folder.iterdir())}


def expected_rgb(path: Path) -> np.ndarray:
    """The RGB pixels the documented rules give: EXIF applied, alpha dropped (no compositing), palette and gray
    expanded, 16-bit samples shifted right by 8."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            from PIL import ImageOps

            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"))
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # the stored samples, untouched
    if raw.dtype == np.uint16:
        raw = (raw >> 8).astype(np.uint8)
        if raw.ndim == 2:
            return np.repeat(raw[:, :, None], 3, axis=2)
        return np.ascontiguousarray(raw[:, :, 2::-1])
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))
