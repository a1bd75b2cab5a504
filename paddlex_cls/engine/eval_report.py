"""What ``evaluate`` writes beside its metrics: evaluate_details.json and the confusion-matrix plot."""
from __future__ import annotations

import os
from typing import List

import numpy as np

from ..figures import font_families, new_figure, save_figure
from ..fileio import atomic_write_json
from .evaluator import EvalMetrics


def write_eval_details(out_dir: str, metrics: EvalMetrics, labels: List[str]) -> None:
    """evaluate_details.json (per-class top-1, confusion matrix, loss) and confusion_matrix.png."""
    per_class = {labels[i]: acc for i, acc in enumerate(metrics.per_class_accuracy())}
    atomic_write_json(os.path.join(out_dir, "evaluate_details.json"),
                      {"per_class_top1": per_class, "labels": labels, "confusion_matrix": metrics.confusion.tolist(),
                       "samples": metrics.samples, "loss": metrics.loss})
    plot_confusion(metrics.confusion, labels, os.path.join(out_dir, "confusion_matrix.png"))


def plot_confusion(confusion: np.ndarray, labels: List[str], path: str) -> None:
    """Row-normalised confusion matrix; names (in any script) shown when there are few enough classes to read."""
    n = len(labels)
    size = min(20, max(5, n * 0.35))
    fig = new_figure(figsize=(size, size))
    ax = fig.subplots()
    rows = confusion.sum(axis=1, keepdims=True)
    norm = np.divide(confusion, rows, out=np.zeros(confusion.shape, dtype=float), where=rows > 0)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046)
    if n <= 40:
        families = font_families("".join(labels))
        ax.set_xticks(range(n), labels, rotation=90, fontfamily=families)
        ax.set_yticks(range(n), labels, fontfamily=families)
        if n <= 15:
            for i in range(n):
                for j in range(n):
                    if confusion[i, j]:
                        ax.text(j, i, str(confusion[i, j]), ha="center", va="center",
                                color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title="confusion matrix (rows normalised)")
    save_figure(fig, path, dpi=100, bbox_inches="tight")
