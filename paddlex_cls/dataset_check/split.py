"""Re-splitting a dataset's train+val lists by percentages, seeded and without losing the user's files.

The split is by image, not by line: every line that names an image goes to the same side, so an image listed
several times (oversampling) never ends up in both train and val. Both lists are replaced together
(``list_swap``); the originals are kept as ``.bak`` (an existing .bak is never overwritten).
"""
from __future__ import annotations

import os
import random
from typing import Dict, List, Optional

from ..data.annotations import SPLIT_FILES, Annotations, ProblemLog, iter_text_lines
from ..errors import ConfigError, DatasetError
from .list_swap import swap_lists


def check_percents(train_percent: Optional[int], val_percent: Optional[int]) -> None:
    """Reject percentages that cannot make a split, before any file is touched."""
    hint = "e.g. -o CheckDataset.split.train_percent=90 -o CheckDataset.split.val_percent=10"
    if train_percent is None or val_percent is None:
        raise ConfigError("CheckDataset.split.enable is true but train_percent/val_percent are not both set", hint)
    if train_percent + val_percent != 100:
        raise ConfigError(f"CheckDataset.split.train_percent + val_percent must be 100, got {train_percent} + "
                          f"{val_percent} = {train_percent + val_percent}", hint)


def split_lines(groups: List[List[str]], train_percent: int, seed: int) -> Dict[str, List[str]]:
    """Shuffle the images (each a group of list lines) with ``random.Random(seed)`` and cut at ``train_percent``."""
    order = list(range(len(groups)))
    random.Random(seed).shuffle(order)
    n_train = round(len(order) * train_percent / 100)
    if n_train == 0 or n_train == len(order):
        raise DatasetError(f"cannot split {len(order)} image(s) {train_percent}/{100 - train_percent}: one side "
                           "would be empty", "add images, or choose percents that leave both sides at least one")
    return {"train": [line for k in order[:n_train] for line in groups[k]],
            "val": [line for k in order[n_train:] for line in groups[k]]}


def split_dataset(ann: Annotations, train_percent: int, seed: int) -> None:
    """Pool the parsed train and val lines, split them by image and replace both list files together."""
    groups: Dict[int, List[str]] = {}  # image index -> its lines as written, in the order first listed
    for split in ("train", "val"):
        samples = ann.splits.get(split)
        if samples is None or not len(samples):
            continue
        text = dict(iter_text_lines(os.path.join(ann.root, SPLIT_FILES[split]), ProblemLog()))
        for line, pid in zip(samples.lines, samples.path_ids):
            groups.setdefault(pid, []).append(text[line])
    new = split_lines(list(groups.values()), train_percent, seed)
    swap_lists(ann.root, {SPLIT_FILES[s]: "".join(f"{line}\n" for line in lines) for s, lines in new.items()})
