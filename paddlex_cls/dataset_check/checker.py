"""The check_dataset mode: validate every line and image, optionally re-split, then report.

Outputs (under ``Global.output``): ``check_dataset_result.json``, ``check_dataset/demo_img/*`` and
``check_dataset/histogram.png``, as PaddleX writes them.
"""
from __future__ import annotations

import logging
import os
import random
import shutil
from collections import Counter
from typing import Any, Dict, List

from PIL import Image

from ..data.annotations import SPLIT_FILES, Annotations, Sample, parse_dataset
from ..drawing import draw_label
from ..errors import NotBuiltError
from .histogram import save_histogram
from .split import check_percents, split_lines, write_split
from .validate import check_images

logger = logging.getLogger("paddlex_cls")
DEMO_PER_SPLIT = 10
DEMO_SEED = 0


def validate_dataset(root: str, verify: str = "header", workers: int = None, max_errors: int = 50,
                     splits=("train", "val")) -> Annotations:
    """Parse and check every line and image of the dataset; raises DatasetError listing all problems."""
    ann = parse_dataset(root, splits)
    ann.problems += check_images([(SPLIT_FILES[s], ann.splits[s]) for s in splits], full=verify == "full",
                                 workers=workers)
    ann.raise_if_problems(max_errors)
    return ann


def _split_dataset(root: str, cfg: Dict[str, Any], verify: str, workers, max_errors: int) -> None:
    split_cfg = cfg["CheckDataset"]["split"]
    check_percents(split_cfg["train_percent"], split_cfg["val_percent"])
    present = tuple(s for s in ("train", "val") if os.path.exists(os.path.join(root, SPLIT_FILES[s])))
    ann = validate_dataset(root, verify, workers, max_errors, splits=present or ("train", "val"))
    pooled: List[Sample] = [s for split in present for s in ann.splits[split]]
    write_split(root, split_lines(pooled, split_cfg["train_percent"], split_cfg["seed"]))


def _save_demo_images(ann: Annotations, out_dir: str) -> Dict[str, List[str]]:
    """Copy a seeded sample of each split with its class name drawn on; returns paths relative to the output."""
    demo_dir = os.path.join(out_dir, "check_dataset", "demo_img")
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
            paths[split].append(f"check_dataset/demo_img/{name}")
    return paths


def run_check_dataset(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Run check_dataset for a resolved config; returns the result dict written to check_dataset_result.json."""
    ck = cfg["CheckDataset"]
    root = cfg["Global"]["dataset_dir"]
    out_dir = cfg["Global"]["output"]
    if ck["convert"]["enable"]:
        raise NotBuiltError(f"CheckDataset.convert is not available for ClsDataset (asked to convert from "
                            f"{ck['convert']['src_dataset_type']!r})",
                            "prepare label.txt/train.txt/val.txt yourself and set -o CheckDataset.convert.enable=False")
    verify, workers, max_errors = ck["verify_images"], ck["num_workers"], ck["max_errors"]
    if ck["split"]["enable"]:
        _split_dataset(root, cfg, verify, workers, max_errors)
    ann = validate_dataset(root, verify, workers, max_errors)
    counts = {s: Counter(x.label for x in ann.splits[s]) for s in ann.splits}
    sample_paths = _save_demo_images(ann, out_dir)
    names = ann.labels
    save_histogram({names[i]: counts["train"].get(i, 0) for i in sorted(names)},
                   {names[i]: counts["val"].get(i, 0) for i in sorted(names)},
                   os.path.join(out_dir, "check_dataset", "histogram.png"))
    logger.info("Check dataset passed !")
    return {
        "done_flag": True,
        "check_pass": True,
        "attributes": {
            "label_file": os.path.join(root, "label.txt"),
            "num_classes": ann.num_classes,
            "train_samples": len(ann.splits["train"]),
            "train_sample_paths": sample_paths["train"],
            "val_samples": len(ann.splits["val"]),
            "val_sample_paths": sample_paths["val"],
        },
        "analysis": {"histogram": "check_dataset/histogram.png"},
        "dataset_path": root,
        "show_type": "image",
        "dataset_type": "ClsDataset",
    }
