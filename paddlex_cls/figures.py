"""Matplotlib figures drawn off-screen (a private Figure on the Agg canvas, never pyplot, so a user's backend and
global figure state are left alone), with fonts that cover any script, saved atomically."""
from __future__ import annotations

import os
from typing import List

from matplotlib import font_manager
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from . import drawing
from .fileio import atomic_save


def font_families(text: str) -> List[str]:
    """Families that cover ``text``, registering our font files with matplotlib; its per-glyph fallback uses them."""
    known = {entry.fname for entry in font_manager.fontManager.ttflist}
    families: List[str] = []
    for path in drawing.font_paths_for(text):
        if path not in known:
            font_manager.fontManager.addfont(path)
        name = font_manager.FontProperties(fname=path).get_name()
        if name not in families:
            families.append(name)
    return families or ["DejaVu Sans"]


def new_figure(**kwargs) -> Figure:
    """A Figure bound to the Agg canvas."""
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, **savefig_kwargs) -> None:
    """Write ``fig`` as PNG to ``path`` atomically (a reader never sees a half-written file)."""
    kwargs = {"format": "png", "metadata": {"Software": None}, **savefig_kwargs}
    atomic_save(os.fspath(path), lambda tmp: fig.savefig(tmp, **kwargs))
