"""Crash-safe file writing: write to a temp file in the same folder, fsync, then rename over the target.

A reader (or a crash) therefore sees either the old complete file or the new complete file, never a truncated one.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Union

PathLike = Union[str, Path]


@contextmanager
def atomic_path(path: PathLike) -> Iterator[str]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on error it is removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write text (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)


def atomic_write_json(path: PathLike, data: Any, indent: int = 4, ensure_ascii: bool = False) -> None:
    """Write JSON (UTF-8; indented and with non-ASCII kept unless asked otherwise) atomically."""
    atomic_write_text(path, json.dumps(data, indent=indent, ensure_ascii=ensure_ascii) + "\n")


def atomic_save(path: PathLike, writer: Callable[[str], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result to ``path`` atomically (e.g. for paddle.save)."""
    with atomic_path(path) as tmp:
        writer(tmp)
