#!/usr/bin/env python3
"""Build the bundled demo dataset (``dataset/digits_demo``) from the 1,797 8x8 digits in scikit-learn's wheel.

The digits come from ``sklearn/datasets/data/digits.csv.gz``: from an installed scikit-learn if there is one,
else from its wheel fetched with ``pip download`` (nothing is installed). Each 8x8 image (values 0..16) is
upscaled to a 32x32 RGB PNG with bicubic interpolation (smooth strokes, closer to a photo than 4x4 blocks), in
dark ink on a light background whose colours vary per image; the colours do not depend on the class, so a
model cannot learn the class from them. A seeded, stratified 80/20 split gives train.txt and val.txt.
The output is deterministic: the same seed gives byte-identical files.

Usage:
    python tools/make_demo_dataset.py [--out dataset/digits_demo] [--seed 0] [--force]
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.metadata
import importlib.util
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CSV_MEMBER = "sklearn/datasets/data/digits.csv.gz"
# Of the decompressed CSV: the file has not changed in years, and a check keeps the dataset the same if it does.
CSV_SHA256 = "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8"
NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
SIZE = 32
VAL_FRACTION = 0.2
ROOT = Path(__file__).resolve().parent.parent

README = """# digits_demo

A small, real image-classification dataset in PaddleX's ClsDataset format, for the quick start and the tests.

- 1,797 images of handwritten digits, 10 classes (`label.txt`: `0 zero` .. `9 nine`), 32x32 RGB PNG.
- `train.txt` / `val.txt`: a stratified split, about 80/20, made with seed {seed}.
- Made by `tools/make_demo_dataset.py` (re-running it gives byte-identical files): each 8x8 image (values 0..16)
  is upscaled with bicubic interpolation and drawn in dark ink on a light background, with colours that vary per
  image but not per class.

## Source and licence

The 8x8 images are the copy of the UCI "Optical Recognition of Handwritten Digits" test set that scikit-learn
ships as `{member}` (E. Alpaydin, C. Kaynak, 1998; Bogazici University). They are redistributed here under
scikit-learn's BSD 3-Clause licence, reproduced in `LICENSE`.
"""


def _copying_text(text: str) -> str:
    """The BSD-3 part of scikit-learn's COPYING (wheels append the licences of bundled libraries after '----')."""
    return text.split("\n----", 1)[0].rstrip() + "\n"


def _from_installed() -> tuple[bytes, str] | None:
    """(csv.gz bytes, licence text) from an installed scikit-learn, found without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.origin:
        return None
    csv = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    files = importlib.metadata.distribution("scikit-learn").files or []
    copying = [f for f in files if f.name == "COPYING"]
    if not csv.is_file() or not copying:
        return None
    return csv.read_bytes(), _copying_text(copying[0].read_text(encoding="utf-8"))


def _from_wheel() -> tuple[bytes, str]:
    """(csv.gz bytes, licence text) from scikit-learn's wheel, downloaded to a temporary folder, not installed."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "scikit-learn", "--no-deps", "--only-binary=:all:",
               "--quiet", "--dest", tmp]
        if subprocess.run(cmd, check=False).returncode != 0:
            sys.exit("pip could not download the scikit-learn wheel; install scikit-learn and re-run.")
        wheel = next(Path(tmp).glob("scikit_learn-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            copying = next(n for n in zf.namelist() if n.endswith(".dist-info/licenses/COPYING")
                           or n.endswith(".dist-info/COPYING"))
            return zf.read(CSV_MEMBER), _copying_text(zf.read(copying).decode("utf-8"))


def load_digits() -> tuple[np.ndarray, np.ndarray, str]:
    """Images (N, 8, 8) with values 0..16, labels (N,), and scikit-learn's licence text."""
    csv_gz, licence = _from_installed() or _from_wheel()
    csv = gzip.decompress(csv_gz)
    if hashlib.sha256(csv).hexdigest() != CSV_SHA256:
        sys.exit(f"{CSV_MEMBER} differs from the expected file (SHA-256 {CSV_SHA256}); update CSV_SHA256 if the "
                 "change is intended.")
    table = np.loadtxt(io.BytesIO(csv), delimiter=",", dtype=np.int64)
    return table[:, :64].reshape(-1, 8, 8), table[:, 64], licence


def render(digit: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """One 8x8 digit (0..16) as a 32x32 RGB image: dark ink on a light background, colours from ``rng``."""
    ink_level = Image.fromarray(digit.astype(np.float32) / 16.0, mode="F")
    ink_level = ink_level.resize((SIZE, SIZE), Image.Resampling.BICUBIC)
    # Bicubic overshoots slightly past 0 and 1 at stroke edges.
    alpha = np.clip(np.asarray(ink_level), 0.0, 1.0)[..., None]
    background = rng.integers(170, 256, size=3)
    ink = rng.integers(0, 100, size=3)
    return Image.fromarray(np.rint(background + (ink - background) * alpha).astype(np.uint8), mode="RGB")


def split(labels: np.ndarray, seed: int) -> tuple[list[int], list[int]]:
    """Stratified split: in each class, a seeded shuffle sends round(VAL_FRACTION * count) images to val."""
    rnd = random.Random(seed)
    train, val = [], []
    for cls in range(len(NAMES)):
        members = [int(i) for i in np.flatnonzero(labels == cls)]
        rnd.shuffle(members)
        n_val = round(VAL_FRACTION * len(members))
        val += members[:n_val]
        train += members[n_val:]
    return sorted(train), sorted(val)


def _write_text(path: Path, text: str) -> None:
    # newline="\n": the same bytes on every platform.
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def build(out: Path, seed: int) -> None:
    """Write the whole dataset into ``out`` (which must be empty or missing)."""
    images, labels, licence = load_digits()
    rng = np.random.default_rng(seed)
    paths = []
    for idx, (digit, label) in enumerate(zip(images, labels)):
        rel = f"images/{NAMES[label]}/{idx:04d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        render(digit, rng).save(out / rel, format="PNG", optimize=True)
        paths.append(rel)
    train, val = split(labels, seed)
    _write_text(out / "label.txt", "".join(f"{i} {name}\n" for i, name in enumerate(NAMES)))
    _write_text(out / "train.txt", "".join(f"{paths[i]} {labels[i]}\n" for i in train))
    _write_text(out / "val.txt", "".join(f"{paths[i]} {labels[i]}\n" for i in val))
    _write_text(out / "README.md", README.format(seed=seed, member=CSV_MEMBER))
    _write_text(out / "LICENSE", "The images in this folder are derived from scikit-learn's digits data set, "
                                 "under this licence:\n\n" + licence)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "dataset" / "digits_demo", help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the colours")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    args = parser.parse_args(argv)
    out: Path = args.out.resolve()
    if out.exists() and any(out.iterdir()) and not args.force:
        parser.error(f"{out} exists and is not empty; pass --force to replace it")
    # Build next to the target and swap it in at the end, so a failed run leaves the old dataset as it was.
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        build(tmp, args.seed)
        os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n_train = len((out / "train.txt").read_text().splitlines())
    n_val = len((out / "val.txt").read_text().splitlines())
    print(f"Wrote {out}: {n_train} train, {n_val} val images in {len(NAMES)} classes.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
