"""Re-splitting a dataset's train+val lists by percentages, seeded and without losing the user's files."""
from __future__ import annotations

import os
import random
import shutil
from typing import Dict, List, Optional

from ..data.annotations import SPLIT_FILES, Sample
from ..errors import ConfigError, DatasetError
from ..fileio import atomic_path, atomic_write_text
from ..log import logger


def check_percents(train_percent: Optional[int], val_percent: Optional[int]) -> None:
    """Reject percentages that cannot make a split, before any file is touched."""
    hint = "e.g. -o CheckDataset.split.train_percent=90 -o CheckDataset.split.val_percent=10"
    if train_percent is None or val_percent is None:
        raise ConfigError("CheckDataset.split.enable is true but train_percent/val_percent are not both set", hint)
    if train_percent + val_percent != 100:
        raise ConfigError(f"CheckDataset.split.train_percent + val_percent must be 100, got {train_percent} + "
                          f"{val_percent} = {train_percent + val_percent}", hint)


def split_lines(samples: List[Sample], train_percent: int, seed: int) -> Dict[str, List[str]]:
    """Shuffle the pooled lines with ``random.Random(seed)`` and cut them at ``train_percent``."""
    lines = [s.text for s in samples]
    random.Random(seed).shuffle(lines)
    n_train = round(len(lines) * train_percent / 100)
    if n_train == 0 or n_train == len(lines):
        raise DatasetError(f"cannot split {len(lines)} sample(s) {train_percent}/{100 - train_percent}: "
                           f"one side would be empty", "add images, or choose percents that leave both sides "
                                                       "at least one sample")
    return {"train": lines[:n_train], "val": lines[n_train:]}


def write_split(root: str, new_lines: Dict[str, List[str]]) -> None:
    """Back up each list file to ``<name>.bak`` (never overwriting an existing .bak), then replace it atomically."""
    for split, lines in new_lines.items():
        path = os.path.join(root, SPLIT_FILES[split])
        backup = path + ".bak"
        if os.path.exists(path):
            if os.path.exists(backup):
                logger.info("keeping the existing backup %s (not overwritten)", backup)
            else:
                with atomic_path(backup) as tmp:  # a crash must not leave a truncated .bak behind
                    shutil.copy2(path, tmp)
        atomic_write_text(path, "\n".join(lines) + "\n")
        logger.info("wrote %s: %d samples", path, len(lines))
