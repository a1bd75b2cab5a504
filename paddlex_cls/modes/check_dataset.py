"""``Global.mode=check_dataset``: validate every line and image, optionally re-split, then report.

Outputs (under ``Global.output``): ``check_dataset_result.json``, ``check_dataset/demo_img/*`` and
``check_dataset/histogram.png``, as PaddleX writes them. Nothing on this path imports paddle.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any, Dict, List

from ..data.annotations import LABEL_FILE, SPLIT_FILES, Sample
from ..dataset_check.demo_images import save_demo_images
from ..dataset_check.histogram import save_histogram
from ..dataset_check.split import check_percents, split_lines, write_split
from ..dataset_check.validate import validate_dataset
from ..errors import NotBuiltError
from ..log import logger


def resolve_check_dataset(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Refuse a split or a conversion that cannot run before any file is read."""
    ck = cfg["CheckDataset"]
    if ck["split"]["enable"]:
        check_percents(ck["split"]["train_percent"], ck["split"]["val_percent"])
    if ck["convert"]["enable"]:
        raise NotBuiltError(f"CheckDataset.convert is not available for ClsDataset (asked to convert from "
                            f"{ck['convert']['src_dataset_type']!r})",
                            "prepare label.txt/train.txt/val.txt yourself and set -o CheckDataset.convert.enable=False")


def _split_dataset(root: str, ck: Dict[str, Any]) -> None:
    present = tuple(s for s in ("train", "val") if os.path.exists(os.path.join(root, SPLIT_FILES[s])))
    ann = validate_dataset(root, ck["verify_images"], ck["num_workers"], ck["max_errors"],
                           splits=present or ("train", "val"))
    pooled: List[Sample] = [s for split in present for s in ann.splits[split]]
    write_split(root, split_lines(pooled, ck["split"]["train_percent"], ck["split"]["seed"]))


def run_check_dataset(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Check (and optionally re-split) ``Global.dataset_dir``; returns check_dataset_result.json's content."""
    ck = cfg["CheckDataset"]
    root = cfg["Global"]["dataset_dir"]
    out_dir = cfg["Global"]["output"]
    if ck["split"]["enable"]:
        _split_dataset(root, ck)
    ann = validate_dataset(root, ck["verify_images"], ck["num_workers"], ck["max_errors"])
    counts = {s: Counter(x.label for x in ann.splits[s]) for s in ann.splits}
    sample_paths = save_demo_images(ann, out_dir)
    names = ann.labels
    save_histogram({names[i]: counts["train"].get(i, 0) for i in sorted(names)},
                   {names[i]: counts["val"].get(i, 0) for i in sorted(names)},
                   os.path.join(out_dir, "check_dataset", "histogram.png"))
    logger.info("Check dataset passed !")
    return {
        "done_flag": True,
        "check_pass": True,
        "attributes": {
            "label_file": os.path.join(root, LABEL_FILE),
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
