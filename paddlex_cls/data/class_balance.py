"""Skewed classes: loss weights per class and a class-balanced sampler.

``Train.class_weights=auto`` weighs class c by N / (C * n_c) over the C classes present in train.txt (N images,
n_c of class c), so a sample weighs 1 on average and the learning rate keeps its meaning. ``Train.sampler=balanced``
draws each class equally often instead: an epoch is as many draws as there are images, each a uniformly chosen class
and then a uniformly chosen image of it (with replacement), seeded by (seed, epoch) so a resumed run sees the same
draws, and sharded across data-parallel ranks like the default sampler.
"""
from __future__ import annotations

import math
from typing import Any, Iterator, List, Optional, Sequence

import numpy as np

from ..errors import ConfigError


def class_counts(labels: Sequence[int], num_classes: int) -> np.ndarray:
    return np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]


def auto_class_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse class frequency with mean 1 over the samples; classes without samples get 1 (never used)."""
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights.astype(np.float32)


def resolve_class_weights(value: Any, num_classes: int, counts: Optional[np.ndarray]) -> Optional[np.ndarray]:
    """``Train.class_weights`` as an array of num_classes floats (None for none); ConfigError for a bad value."""
    if value is None:
        return None
    if isinstance(value, str):
        if value.strip().lower() != "auto":
            raise ConfigError(f"Train.class_weights={value!r} is not understood",
                              "use null, auto, or a list of numbers, e.g. -o Train.class_weights=[1,5,1]")
        assert counts is not None, "auto class weights need the train list's class counts"
        return auto_class_weights(counts)
    items = value if isinstance(value, (list, tuple)) else [value]
    try:
        weights = np.asarray([float(v) for v in items], dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"Train.class_weights must hold numbers, got {value!r}",
                          "e.g. -o Train.class_weights=[1,5,1]") from None
    if len(weights) != num_classes:
        raise ConfigError(f"Train.class_weights has {len(weights)} numbers but there are {num_classes} classes",
                          f"give one weight per class ({num_classes}), or use -o Train.class_weights=auto")
    if not np.isfinite(weights).all() or (weights < 0).any() or not weights.any():
        raise ConfigError(f"Train.class_weights must be finite, >= 0 and not all 0, got {value!r}",
                          "e.g. -o Train.class_weights=[1,5,1]")
    return weights.astype(np.float32)


class BalancedBatchSampler:
    """Batches of indices where every class is equally likely; ``set_epoch(e)`` before each epoch.

    Args:
        labels: the class of every sample.
        batch_size: indices per batch on this rank.
        seed: the run's seed; the draws of epoch e depend only on (seed, e).
        num_replicas: data-parallel ranks; each takes every num_replicas-th draw.
        rank: this process' rank.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, seed: int, num_replicas: int = 1, rank: int = 0):
        labels = np.asarray(labels, dtype=np.int64)
        self.by_class: List[np.ndarray] = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        self.total = len(labels)
        self.batch_size, self.seed, self.num_replicas, self.rank = batch_size, seed, num_replicas, rank
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    @property
    def per_rank(self) -> int:
        return math.ceil(self.total / self.num_replicas)

    def _draws(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.epoch])
        classes = rng.integers(len(self.by_class), size=self.per_rank * self.num_replicas)
        picks = np.empty(len(classes), dtype=np.int64)
        for c, members in enumerate(self.by_class):
            chosen = classes == c
            picks[chosen] = members[rng.integers(len(members), size=int(chosen.sum()))]
        return picks[self.rank::self.num_replicas]

    def __iter__(self) -> Iterator[List[int]]:
        draws = self._draws()
        for start in range(0, len(draws), self.batch_size):
            yield draws[start:start + self.batch_size].tolist()

    def __len__(self) -> int:
        return math.ceil(self.per_rank / self.batch_size)
