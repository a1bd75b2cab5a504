"""What ``evaluate`` writes beside its metrics: evaluate_details.json, the confusion-matrix plot, and (asked for)
the misclassified images as a list and a contact sheet."""
from __future__ import annotations

import os
from typing import List, Sequence

import numpy as np
from PIL import Image

from ..drawing import draw_label
from ..figures import font_families, new_figure, save_figure
from ..fileio import atomic_save, atomic_write_json, atomic_write_text
from ..preprocess.image_io import ImageDecodeError, load_image
from .evaluator import EvalMetrics

SHEET_MAX = 64
SHEET_TILE = 160
TRUE_COLOR, PRED_COLOR = (0, 120, 60), (175, 30, 30)


def write_eval_details(out_dir: str, metrics: EvalMetrics, labels: List[str]) -> None:
    """evaluate_details.json (per-class precision/recall/F1, macro averages, most confused pairs, confusion matrix,
    loss) and confusion_matrix.png."""
    stats = metrics.per_class()
    per_class = {labels[i]: {key: stats[key][i] for key in ("precision", "recall", "f1", "support")}
                 for i in range(len(labels))}
    confused = [{"true": labels[i], "predicted": labels[j], "samples": n} for i, j, n in metrics.most_confused()]
    atomic_write_json(os.path.join(out_dir, "evaluate_details.json"),
                      {"per_class": per_class, "per_class_top1": {labels[i]: r for i, r in enumerate(stats["recall"])},
                       "macro": metrics.macro(), "most_confused": confused, "labels": labels,
                       "confusion_matrix": metrics.confusion.tolist(), "samples": metrics.samples,
                       "loss": metrics.loss})
    plot_confusion(metrics.confusion, labels, os.path.join(out_dir, "confusion_matrix.png"))


def write_errors(out_dir: str, samples: Sequence, labels: List[str], metrics: EvalMetrics, root: str) -> int:
    """misclassified.txt (image, true, predicted, score; most confident mistakes first) and misclassified.png, a
    contact sheet of up to 64 of them with both labels drawn. Returns how many samples were misclassified."""
    truth = np.array([s.label for s in samples])
    wrong = np.flatnonzero(metrics.predicted != truth)
    wrong = wrong[np.argsort(-metrics.confidence[wrong], kind="stable")]
    rows = ["image\ttrue\tpredicted\tscore"]
    for i in wrong:
        path = samples[i].path
        shown = os.path.relpath(path, root) if path.startswith(os.path.abspath(root) + os.sep) else path
        rows.append(f"{shown}\t{labels[truth[i]]}\t{labels[metrics.predicted[i]]}\t{metrics.confidence[i]:.5f}")
    atomic_write_text(os.path.join(out_dir, "misclassified.txt"), "\n".join(rows) + "\n")
    tiles = [_tile(samples[i].path, labels[truth[i]], labels[metrics.predicted[i]], metrics.confidence[i])
             for i in wrong[:SHEET_MAX]]
    if tiles:
        sheet = _sheet(tiles)
        atomic_save(os.path.join(out_dir, "misclassified.png"), lambda tmp: sheet.save(tmp, format="PNG"))
    return len(wrong)


def _tile(path: str, true: str, pred: str, score: float) -> Image.Image:
    try:
        img = Image.fromarray(load_image(path))
    except (ImageDecodeError, OSError):
        img = Image.new("RGB", (SHEET_TILE, SHEET_TILE), (128, 128, 128))
    img.thumbnail((SHEET_TILE, SHEET_TILE))
    canvas = Image.new("RGB", (SHEET_TILE, SHEET_TILE), (255, 255, 255))
    canvas.paste(img, ((SHEET_TILE - img.width) // 2, (SHEET_TILE - img.height) // 2))
    canvas = draw_label(canvas, f"true: {true}", box_color=TRUE_COLOR)
    return draw_label(canvas, f"pred: {pred} {score:.2f}", box_color=PRED_COLOR, bottom=True)


def _sheet(tiles: List[Image.Image]) -> Image.Image:
    cols = min(8, len(tiles))
    rows = -(-len(tiles) // cols)
    gap = 4
    sheet = Image.new("RGB", (cols * (SHEET_TILE + gap) + gap, rows * (SHEET_TILE + gap) + gap), (255, 255, 255))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, (gap + (k % cols) * (SHEET_TILE + gap), gap + (k // cols) * (SHEET_TILE + gap)))
    return sheet


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
