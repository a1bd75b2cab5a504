"""``Global.mode=check_dataset``: optionally convert or re-split, validate every line and image, then report.

Outputs (under ``Global.output``): ``check_dataset_result.json``, ``check_dataset/demo_img/*`` and
``check_dataset/histogram.png``, as PaddleX writes them. Nothing on this path imports paddle; matplotlib and the
drawing code are imported only once the images have been checked, so the worker processes forked for the checks
stay small.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Any, Dict

from ..data.annotations import LABEL_FILE, SPLIT_FILES
from ..dataset_check.convert import DEFAULT_VAL_PERCENT, check_source_type, convert_image_folder
from ..dataset_check.imbalance import imbalance, log_imbalance
from ..dataset_check.list_swap import recover_lists
from ..dataset_check.split import check_percents, split_dataset
from ..dataset_check.validate import validate_dataset
from ..log import logger


def resolve_check_dataset(cfg: Dict[str, Any], overridden: frozenset) -> None:
    """Refuse a split or a conversion that cannot run before any file is read; fill the conversion's val share."""
    ck = cfg["CheckDataset"]
    if ck["split"]["enable"]:
        check_percents(ck["split"]["train_percent"], ck["split"]["val_percent"])
    if ck["convert"]["enable"]:
        ck["convert"]["src_dataset_type"] = check_source_type(ck["convert"]["src_dataset_type"])
        if ck["split"]["val_percent"] is None:
            ck["split"]["val_percent"] = DEFAULT_VAL_PERCENT


def run_check_dataset(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Check (after an optional conversion or re-split) ``Global.dataset_dir``; returns the result file's content."""
    ck = cfg["CheckDataset"]
    root = os.path.abspath(cfg["Global"]["dataset_dir"])
    out_dir = cfg["Global"]["output"]
    recover_lists(root)
    converted = None
    if ck["convert"]["enable"]:
        # Our own outputs are not classes, also when Global.output is the dataset folder itself.
        ours = [out_dir, os.path.join(out_dir, "check_dataset")]
        converted = convert_image_folder(root, ck["split"]["val_percent"], ck["split"]["seed"], exclude=ours)
    if ck["split"]["enable"]:
        pooled = tuple(s for s in ("train", "val") if os.path.exists(os.path.join(root, SPLIT_FILES[s])))
        ann = validate_dataset(root, ck["verify_images"], ck["num_workers"], ck["max_errors"],
                               pooled or ("train", "val"), allow_overlap=True)  # the split puts each image on one side
        split_dataset(ann, ck["split"]["train_percent"], ck["split"]["seed"])
    ann = validate_dataset(root, ck["verify_images"], ck["num_workers"], ck["max_errors"])

    from ..dataset_check.demo_images import save_demo_images
    from ..dataset_check.histogram import save_histogram

    sample_paths = save_demo_images(ann, out_dir)
    counts = {split: Counter(samples.labels) for split, samples in ann.splits.items()}
    shown = _unique_names(ann.labels)
    save_histogram({shown[i]: counts["train"].get(i, 0) for i in sorted(shown)},
                   {shown[i]: counts["val"].get(i, 0) for i in sorted(shown)},
                   os.path.join(out_dir, "check_dataset", "histogram.png"))
    log_imbalance(counts["train"], ann.labels)
    logger.info("Check dataset passed !")
    attributes = {"label_file": os.path.join(root, LABEL_FILE), "num_classes": ann.num_classes}
    for split, samples in ann.splits.items():
        attributes[f"{split}_samples"] = len(samples)
        attributes[f"{split}_sample_paths"] = sample_paths[split]
    attributes.update(imbalance(counts["train"], ann.labels))
    attributes["distinct_images"] = len(ann.paths.keys)
    attributes["paths_outside_dataset_dir"] = ann.paths.outside
    result = {
        "done_flag": True,
        "check_pass": True,
        "attributes": attributes,
        "analysis": {"histogram": "check_dataset/histogram.png"},
        "dataset_path": root,
        "show_type": "image",
        "dataset_type": "ClsDataset",
    }
    if converted is not None:
        result["convert"] = converted
    return result


def _unique_names(labels: Dict[int, str]) -> Dict[int, str]:
    """Class names for the histogram, where a name several ids share gets its id appended."""
    times = Counter(labels.values())
    return {cid: name if times[name] == 1 else f"{name} ({cid})" for cid, name in labels.items()}
