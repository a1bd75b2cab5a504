"""Crash-safe file writing: write to a temp file in the same folder, fsync, then rename over the target.

A reader (or a crash) therefore sees either the old complete file or the new complete file, never a truncated one.
The result has the mode a plain ``open(path, "w")`` would give: a replaced file keeps its mode, a new file gets the
process umask's (temp files are created 0600, which would hide an export or a user's train.txt from other accounts).
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, List, Union

from .signals import deferred

PathLike = Union[str, Path]


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it; set back at once
    os.umask(mask)
    return mask


_NEW_FILE_MODE = 0o666 & ~_umask()


def _final_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return _NEW_FILE_MODE


@contextmanager
def atomic_path(path: PathLike, durable: bool = True) -> Iterator[str]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on error it is removed.

    Args:
        durable: fsync before the rename. Writers of many small files (predict results) pass False and sync once
            at the end: the rename alone still never exposes a partial file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, _final_mode(path))
        if durable:
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


OWNER_MARK = ".paddlex_cls"  # an empty file in every folder paddlex_cls writes whole (checkpoints, exports)


def mark_owned(folder: PathLike) -> None:
    """Mark a folder as written by paddlex_cls, so a later run may replace it."""
    with open(os.path.join(folder, OWNER_MARK), "w", encoding="utf-8"):
        pass


def is_owned(folder: PathLike, legacy_names: Iterable[str] = ()) -> bool:
    """True for a folder paddlex_cls wrote: it holds the mark, or (written before the mark existed) nothing but
    ``legacy_names`` entries."""
    if os.path.isfile(os.path.join(folder, OWNER_MARK)):
        return True
    names = set(legacy_names)
    return bool(names) and set(os.listdir(folder)) <= names


def replace_dir(new: PathLike, final: PathLike, legacy_names: Iterable[str] = ()) -> None:
    """Swap the complete folder ``new`` in as ``final`` by renames; the previous ``final`` is kept under
    ``.<name>.old`` until the swap is done, so a crash leaves one complete set (``restore_interrupted`` finishes it).

    Raises:
        FileExistsError: ``final`` exists and was not written by paddlex_cls (it is never replaced or deleted).
    """
    new, final = os.fspath(new), os.fspath(final)
    if os.path.exists(final) and not (os.path.isdir(final) and is_owned(final, legacy_names)):
        raise FileExistsError(final)
    old = os.path.join(os.path.dirname(final), f".{os.path.basename(final)}.old")
    shutil.rmtree(old, ignore_errors=True)
    with deferred():  # Ctrl-C or SIGTERM between the renames would leave the new set deleted and the old one aside
        if os.path.exists(final):
            os.rename(final, old)
        os.rename(new, final)
        shutil.rmtree(old, ignore_errors=True)


def restore_interrupted(folder: PathLike) -> List[str]:
    """Finish what a crash left in ``folder``: a ``.<name>.old`` whose ``<name>`` is missing goes back into place,
    other ``.<name>.old``/``.<name>.new`` folders and our ``.<file>.*.tmp`` files are removed. Returns what was done.
    """
    folder = os.fspath(folder)
    done: List[str] = []
    for entry in sorted(os.listdir(folder)) if os.path.isdir(folder) else ():
        path = os.path.join(folder, entry)
        if entry.startswith(".") and entry.endswith(".old") and os.path.isdir(path):
            final = os.path.join(folder, entry[1:-4])
            if not os.path.exists(final):
                os.rename(path, final)
                done.append(f"restored {final}")
                continue
        if entry.startswith(".") and (entry.endswith((".old", ".new")) and os.path.isdir(path)):
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path}")
        elif entry.startswith(".") and entry.endswith(".tmp") and os.path.isfile(path):
            os.remove(path)
            done.append(f"removed {path}")
    return done


def contains(folder: PathLike, path: PathLike) -> bool:
    """True when ``path`` is ``folder`` or lies inside it (symlinks resolved)."""
    outer = os.path.realpath(os.path.abspath(folder)).rstrip(os.sep)
    inner = os.path.realpath(os.path.abspath(path))
    return inner == outer or inner.startswith(outer + os.sep)


def ensure_writable_dir(path: PathLike, key: str) -> None:
    """Create ``path`` if needed; ConfigError naming ``key`` when it is a file or cannot be written."""
    from .errors import ConfigError

    try:
        os.makedirs(path, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(f"{key}={path} is a file, not a folder", f"choose a folder with -o {key}=...") from None
    except OSError as e:
        raise ConfigError(f"{key}={path} cannot be created: {e.strerror}", f"choose a writable folder with -o "
                          f"{key}=...") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path} is not writable", f"choose a writable folder with -o {key}=...")
