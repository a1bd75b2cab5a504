"""The datasets and loaders of a training run, built from the resolved config."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from ..data.class_balance import BalancedBatchSampler, class_counts
from ..data.dataset import ClsDataset
from ..data.loader import build_loader
from ..data.transforms import eval_transform, train_transform
from ..models.registry import ModelEntry, Recipe
from ..runtime import Runtime


@dataclass
class TrainData:
    train_ds: ClsDataset
    val_ds: ClsDataset
    train_loader: Any
    val_loader: Any
    labels: List[str]
    class_counts: np.ndarray  # train images per class


def build_train_data(cfg: Dict[str, Any], entry: ModelEntry, recipe: Recipe, rt: Runtime) -> TrainData:
    """Train and val datasets with the model's transforms; the train loader is sharded across ranks."""
    g, t = cfg["Global"], cfg["Train"]
    pre, size = entry.preprocess, g["input_size"]
    crop = size or pre.input_size
    augment = train_transform(pre, size, recipe.augment, t["random_crop_scale"], t["random_flip"])
    train_ds = ClsDataset(g["dataset_dir"], "train", augment, seed=g["seed"], image_size=crop)
    val_ds = ClsDataset(g["dataset_dir"], "val", eval_transform(pre, size), image_size=crop)
    loader_args = dict(num_workers=t["num_workers"], use_shared_memory=t["use_shared_memory"])
    balanced = None
    if t["sampler"] == "balanced":
        balanced = BalancedBatchSampler(train_ds.labels_array(), t["batch_size"], g["seed"], rt.world_size, rt.rank)
    train_loader = build_loader(train_ds, t["batch_size"], train=True, world_size=rt.world_size, rank=rt.rank,
                                batch_sampler=balanced, **loader_args)
    # Evaluation runs on rank 0 over the whole val set: a distributed sampler would pad and double count.
    val_loader = build_loader(val_ds, cfg["Evaluate"]["batch_size"], train=False, **loader_args)
    labels = [train_ds.labels[i] for i in range(train_ds.num_classes)]
    counts = class_counts(train_ds.labels_array(), len(labels))
    return TrainData(train_ds, val_ds, train_loader, val_loader, labels, counts)


def batch_warning(batch_size: int, world_size: int, train_images: int) -> Optional[str]:
    """What to tell a user whose global batch is larger than the training set: every epoch is then one step of
    fewer images than asked for (none are dropped; the learning rate was chosen for the full batch)."""
    if batch_size * world_size <= train_images:
        return None
    asked = f"{batch_size} per card x {world_size} cards" if world_size > 1 else str(batch_size)
    step = f"{math.ceil(train_images / world_size):,} images per card" if world_size > 1 else \
        f"{train_images:,} images"
    return (f"Train.batch_size={asked} is larger than the {train_images:,} training images: each epoch is a single "
            f"step of {step}. Lower -o Train.batch_size if that is not meant")
