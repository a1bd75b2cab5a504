"""The sample images check_dataset writes: a seeded few per split, each with its class name drawn top-left."""
from __future__ import annotations

import os
import random
import shutil
from typing import Dict, List

from PIL import Image

from ..data.annotations import Annotations
from ..drawing import draw_label

DEMO_PER_SPLIT = 10
DEMO_SEED = 0
DEMO_DIR = os.path.join("check_dataset", "demo_img")


def save_demo_images(ann: Annotations, out_dir: str) -> Dict[str, List[str]]:
    """Copy a seeded sample of each split with its class name drawn on; returns paths relative to ``out_dir``."""
    demo_dir = os.path.join(out_dir, DEMO_DIR)
    shutil.rmtree(demo_dir, ignore_errors=True)
    os.makedirs(demo_dir)
    rng = random.Random(DEMO_SEED)
    paths: Dict[str, List[str]] = {}
    for split, samples in ann.splits.items():
        chosen = rng.sample(samples, min(DEMO_PER_SPLIT, len(samples)))
        paths[split] = []
        for k, s in enumerate(chosen):
            stem, ext = os.path.splitext(os.path.basename(s.path))
            ext = ext.lower() if ext.lower() in (".jpg", ".jpeg", ".png", ".bmp") else ".png"
            name = f"{split}_{k:02d}_{stem}{ext}"
            with Image.open(s.path) as img:
                draw_label(img.convert("RGB"), ann.labels[s.label]).save(os.path.join(demo_dir, name))
            paths[split].append(f"{DEMO_DIR}/{name}".replace(os.sep, "/"))
    return paths
