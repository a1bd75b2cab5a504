"""The evaluator shared by training (per-epoch eval) and the evaluate mode: metrics are returned as values.

It only needs a function from a batch to logits, so any engine (dygraph, a static program, an inference
predictor) can be evaluated the same way.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

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
    predicted: Optional[np.ndarray] = None  # top-1 class of every sample in loader order (when kept)
    confidence: Optional[np.ndarray] = None  # its softmax probability

    def per_class_accuracy(self) -> List[Optional[float]]:
        """Recall of each class (None for a class with no samples)."""
        return self.per_class()["recall"]

    def per_class(self) -> Dict[str, List[Optional[float]]]:
        """Precision, recall and F1 of each class (None where undefined: no samples, or never predicted)."""
        tp = np.diag(self.confusion).astype(float)
        true, pred = self.confusion.sum(axis=1), self.confusion.sum(axis=0)
        precision = [float(t / p) if p else None for t, p in zip(tp, pred)]
        recall = [float(t / n) if n else None for t, n in zip(tp, true)]
        f1 = [(2 * p * r / (p + r) if p + r else 0.0) if p is not None and r is not None else None
              for p, r in zip(precision, recall)]
        return {"precision": precision, "recall": recall, "f1": f1, "support": [int(n) for n in true]}

    def macro(self) -> Dict[str, Optional[float]]:
        """Unweighted means over the classes that have samples (a never-predicted class counts 0 precision)."""
        stats = self.per_class()
        present = [i for i, n in enumerate(stats["support"]) if n]
        if not present:
            return {"precision": None, "recall": None, "f1": None}
        return {key: float(np.mean([stats[key][i] or 0.0 for i in present])) for key in ("precision", "recall", "f1")}

    def most_confused(self, count: int = 10) -> List[Tuple[int, int, int]]:
        """The ``count`` largest off-diagonal cells: (true class, predicted class, samples), largest first."""
        off = self.confusion.copy()
        np.fill_diagonal(off, 0)
        order = np.argsort(-off, axis=None, kind="stable")[:count]
        pairs = [(int(i), int(j), int(off[i, j])) for i, j in zip(*np.unravel_index(order, off.shape))]
        return [p for p in pairs if p[2] > 0]

    def to_dict(self, prefix: str = "val.") -> Dict[str, float]:
        """PaddleX's keys; ``top5`` holds top-k with k = min(5, num_classes)."""
        return {f"{prefix}top1": self.top1, f"{prefix}top5": self.topk}


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def evaluate(forward: Callable[[np.ndarray], np.ndarray], loader, num_classes: int, topk: int = 5,
             log_interval: int = 0, header: str = "[Eval]", keep_predictions: bool = False) -> EvalMetrics:
    """Run ``forward`` (a batch -> logits function, in eval mode) over ``loader`` once and compute the metrics.

    Args:
        topk: the k of top-k, capped at num_classes (top-5 of a 3-class problem is top-3).
        log_interval: log a progress line every N iterations (0: never).
        keep_predictions: also return each sample's top-1 class and probability (loader order).
    """
    k = min(topk, num_classes)
    confusion = np.zeros((num_classes, num_classes), dtype=np.int64)
    hit_k = 0
    loss_sum = 0.0
    seen = 0
    start = time.time()
    check = getattr(loader.dataset, "check_batch", None)
    predicted: List[np.ndarray] = []
    confidence: List[np.ndarray] = []
    for it, (images, labels) in enumerate(loader, 1):
        labels_np = np.asarray(labels).reshape(-1).astype(np.int64)
        if check:
            check(labels_np)
        logits = forward(np.asarray(images))
        log_probs = _log_softmax(logits)
        loss_sum -= float(log_probs[np.arange(len(labels_np)), labels_np].sum())
        top = np.argsort(-logits, axis=1, kind="stable")[:, :k]
        if keep_predictions:
            predicted.append(top[:, 0])
            confidence.append(np.exp(log_probs[np.arange(len(top)), top[:, 0]]))
        np.add.at(confusion, (labels_np, top[:, 0]), 1)
        hit_k += int((top == labels_np[:, None]).any(axis=1).sum())
        seen += len(labels_np)
        if log_interval and it % log_interval == 0:
            logger.info("%s[Iter: %d/%d] samples: %d, %.3f s", header, it, len(loader), seen, time.time() - start)
    top1 = float(np.trace(confusion) / seen) if seen else 0.0
    kept = (np.concatenate(predicted), np.concatenate(confidence)) if predicted else (None, None)
    return EvalMetrics(top1=top1, topk=hit_k / seen if seen else 0.0, k=k, loss=loss_sum / max(seen, 1),
                       confusion=confusion, samples=seen, predicted=kept[0], confidence=kept[1])
