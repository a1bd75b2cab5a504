"""The per-class histogram of a dataset check: train and val bars side by side, classes sorted by train count.

Drawn on a private ``Figure`` with the Agg canvas, never through pyplot, so a user's interactive backend and
global figure state are left alone. Class names in any script get real glyphs through the fonts of
``paddlex_cls.drawing``.

Example:
    >>> save_histogram({"cat": 80, "dog": 75}, {"cat": 20, "dog": 19}, "output/check_dataset/histogram.png")
"""
from __future__ import annotations

import math
import os

from matplotlib.figure import Figure

from ..errors import DatasetError
from ..figures import font_families, new_figure, save_figure

MIN_WIDTH_IN = 6.4
MAX_WIDTH_IN = 40.0  # 4,000 px at DPI: wide enough for 1,000 classes, still a sane PNG
HEIGHT_IN = 5.0
DPI = 100
INCH_PER_CLASS = 0.3  # room for one vertical tick label at LABEL_SIZE
LABEL_SIZE = 8
MIN_PX_PER_CLASS = 8  # below this, side-by-side bars become too thin to draw cleanly
MAX_NAME_CHARS = 24
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME_CHARS else name[: MAX_NAME_CHARS - 1] + "…"


def _order(train_counts: dict[str, int], val_counts: dict[str, int]) -> list[str]:
    """Classes by train count, descending; ties keep label order (the dicts' order)."""
    classes = list(train_counts) + [name for name in val_counts if name not in train_counts]
    return sorted(classes, key=lambda name: -train_counts.get(name, 0))


def _bars(ax, train: list[int], val: list[int], px_per_class: float) -> None:
    """Side-by-side bars; with too little room per class, two translucent overlapping step areas instead."""
    n = len(train)
    if px_per_class >= MIN_PX_PER_CLASS:
        xs = range(n)
        ax.bar([x - 0.2 for x in xs], train, width=0.4, color=TRAIN_COLOR, linewidth=0, label=f"train ({sum(train)})")
        ax.bar([x + 0.2 for x in xs], val, width=0.4, color=VAL_COLOR, linewidth=0, label=f"val ({sum(val)})")
        if n <= 30:
            for container in ax.containers:
                ax.bar_label(container, fontsize=LABEL_SIZE, padding=1)
        return
    # Bars one or two pixels wide alias into moire stripes; areas stay readable at any class count.
    edges = [x - 0.5 for x in range(n + 1)]
    ax.stairs(train, edges, fill=True, color=TRAIN_COLOR, alpha=0.6, label=f"train ({sum(train)})")
    ax.stairs(val, edges, fill=True, color=VAL_COLOR, alpha=0.6, label=f"val ({sum(val)})")


def _draw(fig: Figure, classes: list[str], train: list[int], val: list[int]) -> None:
    n = len(classes)
    ax = fig.add_subplot()
    width_in = fig.get_size_inches()[0]
    _bars(ax, train, val, px_per_class=width_in * 0.9 * DPI / n)
    step = max(1, math.ceil(n * INCH_PER_CLASS / width_in))
    ticks = list(range(0, n, step))
    longest = max(len(_short(classes[i])) for i in ticks)
    # Horizontal names while they fit their slot (a character of 8 pt is about 0.07 in wide), else vertical.
    rotation = 0 if longest * 0.07 + 0.1 < width_in / n * step else 90
    families = font_families("".join(classes[i] for i in ticks))
    ax.set_xticks(ticks, [_short(classes[i]) for i in ticks], rotation=rotation, fontsize=LABEL_SIZE,
                  fontfamily=families)
    ax.set_xlim(-0.7, n - 0.3)
    # Headroom above the tallest bar keeps the legend off the bars when all classes are about equal.
    ax.set_ylim(0, max(max(train), max(val), 1) * 1.25)
    xlabel = "class (sorted by train count)"
    ax.set_xlabel(xlabel if step == 1 else f"{xlabel}; 1 name shown in {step}")
    ax.set_ylabel("images")
    ax.set_title(f"{n} classes, train: {sum(train)} images, val: {sum(val)} images")
    ax.legend(loc="upper right", ncol=2)  # ncol: also matplotlib < 3.6
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def save_histogram(train_counts: dict[str, int], val_counts: dict[str, int], path: str | os.PathLike) -> None:
    """Write the class histogram PNG to ``path`` atomically (a reader never sees a half-written file).

    Args:
        train_counts: images per class name in train.txt, in label order.
        val_counts: images per class name in val.txt; classes missing from either side count 0.
        path: the PNG to write; its folder is created.

    Raises:
        DatasetError: both lists are empty.
    """
    classes = _order(train_counts, val_counts)
    if not classes:
        raise DatasetError("The dataset has no classes to plot.", "Add labelled images to train.txt and val.txt.")
    width = min(MAX_WIDTH_IN, max(MIN_WIDTH_IN, 1.5 + len(classes) * INCH_PER_CLASS))
    fig = new_figure(figsize=(width, HEIGHT_IN), dpi=DPI, layout="constrained")
    _draw(fig, classes, [train_counts.get(c, 0) for c in classes], [val_counts.get(c, 0) for c in classes])
    save_figure(fig, path)
