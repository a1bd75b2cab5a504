"""Class imbalance of a training list: largest / smallest non-empty class, and the classes with no images.

Above ``SUGGEST_RATIO`` the log suggests the training keys that compensate (class weights or a balanced sampler).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping

from ..log import logger

SUGGEST_RATIO = 10.0


def imbalance(counts: Mapping[int, int], labels: Mapping[int, str]) -> Dict[str, Any]:
    """``imbalance_ratio`` (None when no class has images) and ``empty_train_classes`` of per-class ``counts``."""
    nonempty = [counts[cid] for cid in labels if counts.get(cid)]
    ratio = round(max(nonempty) / min(nonempty), 2) if nonempty else None
    return {"imbalance_ratio": ratio, "empty_train_classes": sum(1 for cid in labels if not counts.get(cid))}


def log_imbalance(counts: Mapping[int, int], labels: Mapping[int, str]) -> None:
    """Warn about empty classes, and suggest class weights or balanced sampling above ``SUGGEST_RATIO``."""
    stats = imbalance(counts, labels)
    empty = [labels[cid] for cid in sorted(labels) if not counts.get(cid)]
    if empty:
        more = f" and {len(empty) - 10} more" if len(empty) > 10 else ""
        logger.warning("%d class(es) have no training images: %s%s", len(empty), ", ".join(map(repr, empty[:10])), more)
    ratio = stats["imbalance_ratio"]
    if ratio is not None and ratio > SUGGEST_RATIO:
        by_count = sorted((counts[cid], cid) for cid in labels if counts.get(cid))
        (low, low_id), (high, high_id) = by_count[0], by_count[-1]
        logger.warning("train.txt is imbalanced: class %r has %d images, %.1fx the %d of class %r; consider "
                       "-o Train.class_weights=auto or -o Train.sampler=balanced", labels[high_id], high, ratio, low,
                       labels[low_id])
