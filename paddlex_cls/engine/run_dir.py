"""The output folder of a training run: claimed before anything is written, never shared, never destructive.

- An output that is, or contains, the dataset is refused (checkpoints would be swapped in beside the images).
- One training at a time: a lock file held for the whole run (the launcher's parent holds it for its workers); a
  second run fails at once naming the holder's pid.
- What a crash left behind (``.<name>.new``, ``.<name>.old``, ``.<file>.*.tmp``) is finished or removed first.
- A new run into an output that holds files of a previous run (finished, or killed before it wrote
  ``train_result.json``) starts afresh after moving them into ``previous_runs/<UTC time>/`` (nothing is deleted),
  unless it resumes from a checkpoint of that output.
"""
from __future__ import annotations

import fcntl
import glob
import os
import time
from typing import List, Optional

from ..errors import ConfigError, RuntimeFailure
from ..fileio import contains, is_owned, restore_interrupted
from ..log import logger

LOCK_FILE = ".paddlex_cls.lock"
PREVIOUS_RUNS = "previous_runs"
# What a training run writes into Global.output (besides checkpoint folders, matched by pattern below).
RUN_FILES = ("config.yaml", "train.log", "train_result.json", "label_dict.txt", "training_curves.png",
             "distributed_train_logs", "best_model", "latest")
RUN_PATTERNS = ("epoch_*", "vdlrecords.*.log")
CHECKPOINT_EXTS = (".pdparams", ".pdopt", ".pdstates", ".pdema")
_held: List[int] = []  # lock file descriptors, kept open (and locked) until the process exits


def check_not_dataset(output: str, dataset_dir: str) -> None:
    """Refuse an output folder that is the dataset folder or contains it."""
    if contains(output, dataset_dir):
        raise ConfigError(f"Global.output={output} is or contains the dataset folder {dataset_dir}; training would "
                          "write checkpoints among your images", "choose a separate folder, e.g. -o Global.output="
                          "output/my_run")


def _lock(output: str) -> None:
    path = os.path.join(output, LOCK_FILE)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
        os.close(fd)
        raise RuntimeFailure(f"another training (pid {holder}) is writing to {output}",
                             "wait for it to finish, or give this run its own -o Global.output") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
    _held.append(fd)


def checkpoint_legacy_names(name: str) -> List[str]:
    """What a checkpoint folder ``name`` held before folders were marked as ours (they may be replaced too)."""
    return [name + ext for ext in CHECKPOINT_EXTS] + ["inference"]


def _written_by_a_run(output: str, name: str) -> bool:
    """A run's file, or a checkpoint folder paddlex_cls wrote (a user's folder of that name is never moved)."""
    path = os.path.join(output, name)
    if not os.path.isdir(path) or name == "distributed_train_logs":
        return True
    return is_owned(path, checkpoint_legacy_names(name))


def _move_previous_run(output: str) -> Optional[str]:
    names = [n for n in RUN_FILES if os.path.exists(os.path.join(output, n))]
    for pattern in RUN_PATTERNS:
        names += [os.path.basename(p) for p in glob.glob(os.path.join(output, pattern))]
    names = [n for n in names if _written_by_a_run(output, n)]
    if not names:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    dest = os.path.join(output, PREVIOUS_RUNS, stamp)
    suffix = 1
    while os.path.exists(dest):
        dest = os.path.join(output, PREVIOUS_RUNS, f"{stamp}-{suffix}")
        suffix += 1
    os.makedirs(dest)
    for name in sorted(set(names)):
        os.rename(os.path.join(output, name), os.path.join(dest, name))
    return dest


def claim_output(output: str, dataset_dir: str, resume_path: Optional[str]) -> None:
    """Make ``output`` this run's: check it, lock it, repair crash leftovers, move a previous run aside."""
    check_not_dataset(output, dataset_dir)
    try:
        os.makedirs(output, exist_ok=True)
        _lock(output)
        for what in restore_interrupted(output):
            logger.info("cleaned up after an interrupted run: %s", what)
        resuming_here = resume_path and contains(output, resume_path)
        if not resuming_here:
            moved = _move_previous_run(output)
            if moved:
                logger.info("%s held a previous training run; it was moved to %s and this run starts afresh",
                            output, moved)
    except (PermissionError, NotADirectoryError, FileExistsError) as e:
        raise ConfigError(f"Global.output={output} cannot be used: {e.strerror or e}",
                          "choose a writable folder with -o Global.output=...") from None
