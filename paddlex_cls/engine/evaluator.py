"""The evaluator shared by training (per-epoch eval) and the evaluate mode: metrics are returned as values.

It only needs a function from a batch to logits, so any engine (dygraph, a static program, an inference
predictor) can be evaluated the same way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

import numpy as np

from ..log import logger


@dataclass
class EvalMetrics:
    """Top-1/top-k accuracy, mean loss and the confusion matrix (rows: true class, columns: predicted)."""

    top1: float
    topk: float
    k: int
    loss: float
    confusion: np.ndarray
    samples: int

    def per_class_accuracy(self) -> List[Optional[float]]:
        """Recall of each class (None for a class with no samples)."""
        totals = self.confusion.sum(axis=1)
        return [float(self.confusion[i, i] / t) if t else None for i, t in enumerate(totals)]

    def to_dict(self, prefix: str = "val.") -> Dict[str, float]:
        """PaddleX's keys; ``top5`` holds top-k with k = min(5, num_classes)."""
        return {f"{prefix}top1": self.top1, f"{prefix}top5": self.topk}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def evaluate(forward: Callable[[np.ndarray], np.ndarray], loader, num_classes: int, topk: int = 5,
             log_interval: int = 0, header: str = "[Eval]") -> EvalMetrics:
    """Run ``forward`` (a batch -> logits function, in eval mode) over ``loader`` once and compute the metrics.

    Args:
        topk: the k of top-k, capped at num_classes (top-5 of a 3-class problem is top-3).
        log_interval: log a progress line every N iterations (0: never).
    """
    k = min(topk, num_classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    hit_k = 0
    loss_sum = 0.0
    seen = 0
    start = time.time()
    check = getattr(loader.dataset, "check_batch", None)
    for it, (images, labels) in enumerate(loader, 1):
        labels_np = np.asarray(labels).reshape(-1).astype(np.int64)
        if check:
            check(labels_np)
        logits = forward(np.asarray(images))
        loss_sum -= float(_log_softmax(logits)[np.arange(len(labels_np)), labels_np].sum())
        top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        np.add.at(confusion, (labels_np, top[:, 0]), 1)
        hit_k += int((top == labels_np[:, None]).any(axis=1).sum())
        seen += len(labels_np)
        if log_interval and it % log_interval == 0:
            logger.info("%s[Iter: %d/%d] samples: %d, %.3f s", header, it, len(loader), seen, time.time() - start)
    top1 = float(np.trace(confusion) / seen) if seen else 0.0
    return EvalMetrics(top1=top1, topk=hit_k / seen if seen else 0.0, k=k, loss=loss_sum / max(seen, 1),
                       confusion=confusion, samples=seen)
