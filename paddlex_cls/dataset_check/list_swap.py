"""Replacing a dataset's list files (label.txt, train.txt, val.txt, test.txt) together: a crash never leaves a mix
of old and new lists, such as a new train.txt beside the old val.txt (images in both splits).

``swap_lists`` works in the dataset folder in five steps:

1. each list that will change is backed up to ``<name>.bak``, unless that .bak exists (it is never overwritten);
2. each new list is written to ``<name>.swap_new`` (atomically: the file exists only once complete);
3. the journal ``.lists_swap`` naming those lists is written (atomically): this is the commit point;
4. each ``<name>.swap_new`` is renamed over ``<name>`` (one atomic rename per file);
5. the journal is deleted.

``recover_lists``, run at the start of every check_dataset, settles what a crash left: with a journal (a crash in
step 4 or 5) it finishes the renames still to do; without one (a crash in step 1 or 2) it deletes the
``.swap_new`` files, leaving the old lists. Either way the lists are all old or all new. Until then the parser
refuses a list with a ``.swap_new`` beside it, so training cannot start on a half-swapped dataset.

A list whose new text equals the current one is left alone (no .bak, no write): a conversion run twice gives the
same files. A replaced list keeps its file mode; a new one gets the usual mode for the user's umask.
"""
from __future__ import annotations

import glob
import os
import shutil
import stat
from typing import Dict, List, Optional

from ..data.annotations import LABEL_FILE, PENDING_SUFFIX, SPLIT_FILES
from ..errors import DatasetError
from ..fileio import atomic_path, atomic_write_text
from ..log import logger

JOURNAL = ".lists_swap"
LIST_NAMES = (LABEL_FILE, *SPLIT_FILES.values())
_rename = os.replace  # one name for the renames of step 4, so tests can interrupt them


def _current_bytes(path: str) -> Optional[bytes]:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def _new_file_mode(path: str) -> int:
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _fsync_dir(folder: str) -> None:
    if os.name == "posix":  # renames are durable once the folder is synced
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _backup(path: str) -> None:
    backup = path + ".bak"
    if os.path.exists(backup):
        logger.info("keeping the existing backup %s (not overwritten)", backup)
        return
    with atomic_path(backup) as tmp:  # a crash must not leave a truncated .bak behind
        shutil.copy2(path, tmp)
    logger.info("backed up %s to %s", path, backup)


def _commit(root: str, names: List[str]) -> None:
    for name in names:
        pending = os.path.join(root, name + PENDING_SUFFIX)
        if os.path.exists(pending):
            _rename(pending, os.path.join(root, name))
    _fsync_dir(root)
    os.remove(os.path.join(root, JOURNAL))
    _fsync_dir(root)


def _unwritable(root: str, err: OSError) -> DatasetError:
    return DatasetError(f"cannot write the list files in {root} ({err.strerror or err}: {err.filename})",
                        "make the dataset folder writable (and free some disk space), or write label.txt and the "
                        "lists yourself")


def swap_lists(root: str, texts: Dict[str, str]) -> List[str]:
    """Replace list files of ``root`` by ``texts`` (name -> new text), all or none.

    Returns:
        The names whose content changed.

    Raises:
        DatasetError: the folder cannot be written (nothing changed, or the swap is finished at the next start).
    """
    try:
        return _swap(root, texts)
    except OSError as e:
        raise _unwritable(root, e) from None


def _swap(root: str, texts: Dict[str, str]) -> List[str]:
    assert set(texts) <= set(LIST_NAMES), texts.keys()
    changed = [name for name, text in texts.items()
               if _current_bytes(os.path.join(root, name)) != text.encode("utf-8")]
    for name in changed:
        if os.path.exists(os.path.join(root, name)):
            _backup(os.path.join(root, name))
    for name in changed:
        path = os.path.join(root, name)
        atomic_write_text(path + PENDING_SUFFIX, texts[name])
        os.chmod(path + PENDING_SUFFIX, _new_file_mode(path))  # the mode of the list it replaces
    if changed:
        atomic_write_text(os.path.join(root, JOURNAL), "".join(f"{name}\n" for name in changed))
        _commit(root, changed)
    for name in texts:
        logger.info("%s %s", "wrote" if name in changed else "unchanged:", os.path.join(root, name))
    return changed


def recover_lists(root: str) -> Optional[str]:
    """Finish (journal present) or undo (no journal) a list swap a crash interrupted; returns what was done."""
    if not os.path.isdir(root):
        return None
    try:
        return _recover(root)
    except OSError as e:
        raise _unwritable(root, e) from None


def _recover(root: str) -> Optional[str]:
    journal = os.path.join(root, JOURNAL)
    done = None
    if os.path.exists(journal):
        with open(journal, encoding="utf-8") as f:
            names = [n for n in f.read().split("\n") if n in LIST_NAMES]  # nothing else is ever renamed
        _commit(root, names)
        done = f"finished replacing {', '.join(names)} in {root} (the previous run stopped half-way)"
    undone = [n for n in LIST_NAMES if os.path.exists(os.path.join(root, n + PENDING_SUFFIX))]
    for name in undone:
        os.remove(os.path.join(root, name + PENDING_SUFFIX))
    if undone:
        done = (f"kept the old {', '.join(undone)} in {root}: the previous run stopped before its new lists were "
                "complete")
    for name in (*LIST_NAMES, JOURNAL):  # temp files of atomic writes a kill left behind
        for stale in glob.glob(os.path.join(glob.escape(root), f".{glob.escape(name)}.*.tmp")):
            os.remove(stale)
    if done:
        logger.warning(done)
    return done
