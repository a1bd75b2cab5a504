"""The sample images check_dataset writes: a seeded few distinct images per split, each with its class name drawn.

Images are decoded by ``image_io.load_image``, as training decodes them (EXIF orientation applied, 16-bit samples
scaled to 8 bits), so a demo image shows what the model will see. The header check passes a truncated file; a sampled
image that cannot be decoded is therefore reported as a dataset problem with its file:line, not a crash.
"""
from __future__ import annotations

import os
import random
import shutil
from typing import Dict, List

from PIL import Image

from ..data.annotations import Annotations, Problem, SplitSamples, format_problems, quote
from ..drawing import draw_label
from ..errors import DatasetError
from ..preprocess.image_io import ImageDecodeError, load_image

DEMO_PER_SPLIT = 10
DEMO_SEED = 0
DEMO_DIR = os.path.join("check_dataset", "demo_img")
SAVED_EXTS = (".jpg", ".jpeg", ".png", ".bmp")


def _pick(samples: SplitSamples, rng: random.Random, k: int) -> List[int]:
    """Indexes of up to ``k`` lines naming distinct images, chosen with ``rng``."""
    chosen, seen = [], set()
    for i in rng.sample(range(len(samples)), min(len(samples), 4 * k)):  # 4k lines: room for repeated images
        if samples.path_ids[i] not in seen:
            seen.add(samples.path_ids[i])
            chosen.append(i)
            if len(chosen) == k:
                break
    return chosen


def save_demo_images(ann: Annotations, out_dir: str) -> Dict[str, List[str]]:
    """Write a seeded sample of each split with its class name drawn on; returns paths relative to ``out_dir``.

    Raises:
        DatasetError: a sampled image cannot be decoded (all such images are listed).
    """
    demo_dir = os.path.join(out_dir, DEMO_DIR)
    shutil.rmtree(demo_dir, ignore_errors=True)
    os.makedirs(demo_dir)
    rng = random.Random(DEMO_SEED)
    paths: Dict[str, List[str]] = {}
    problems: List[Problem] = []
    for split, samples in ann.splits.items():
        paths[split] = []
        for k, i in enumerate(_pick(samples, rng, DEMO_PER_SPLIT)):
            sample = samples[i]
            try:
                rgb = load_image(sample.path)
            except (ImageDecodeError, OSError) as e:
                shown = quote(ann.paths.display(samples.path_ids[i]))
                problems.append(Problem(samples.file, sample.line, f"image {shown} cannot be decoded ({e})"))
                continue
            stem, ext = os.path.splitext(os.path.basename(sample.path))
            ext = ext.lower() if ext.lower() in SAVED_EXTS else ".png"
            name = f"{split}_{k:02d}_{stem}{ext}"
            draw_label(Image.fromarray(rgb), ann.labels[sample.label]).save(os.path.join(demo_dir, name))
            paths[split].append(f"{DEMO_DIR}/{name}".replace(os.sep, "/"))
    if problems:
        raise DatasetError(format_problems(ann.root, problems, len(problems)),
                           "replace or remove these images (the header check cannot see a truncated image); "
                           "-o CheckDataset.verify_images=full decodes every image and lists all that fail")
    return paths
