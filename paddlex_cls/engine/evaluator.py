"""The evaluator shared by training (per-epoch eval) and the evaluate mode: metrics are returned as values."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import paddle
import paddle.nn.functional as F

logger = logging.getLogger("paddlex_cls")


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


def evaluate(model: paddle.nn.Layer, loader, num_classes: int, topk: int = 5, log_interval: int = 0,
             header: str = "[Eval]") -> EvalMetrics:
    """Run ``model`` in eval mode over ``loader`` (every sample exactly once) and compute the metrics.

    Args:
        topk: the k of top-k, capped at num_classes (top-5 of a 3-class problem is top-3).
        log_interval: log a progress line every N iterations (0: never).
    """
    k = min(topk, num_classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    hit_k = 0
    loss_sum = 0.0
    seen = 0
    was_training = model.training
    model.eval()
    start = time.time()
    with paddle.no_grad():
        for it, (images, labels) in enumerate(loader, 1):
            labels_np = labels.numpy().reshape(-1)
            check = getattr(loader.dataset, "check_batch", None)
            if check:
                check(labels_np)
            logits = model(images)
            loss_sum += float(F.cross_entropy(logits, labels.reshape([-1, 1]), reduction="sum").item())
            scores = logits.numpy()
            top = np.argsort(-scores, axis=1)[:, :k]
            np.add.at(confusion, (labels_np, top[:, 0]), 1)
            hit_k += int((top == labels_np[:, None]).any(axis=1).sum())
            seen += len(labels_np)
            if log_interval and it % log_interval == 0:
                logger.info("%s[Iter: %d/%d] samples: %d, %.1f s", header, it, len(loader), seen, time.time() - start)
    if was_training:
        model.train()
    top1 = float(np.trace(confusion) / seen) if seen else 0.0
    return EvalMetrics(top1=top1, topk=hit_k / seen if seen else 0.0, k=k, loss=loss_sum / max(seen, 1),
                       confusion=confusion, samples=seen)
