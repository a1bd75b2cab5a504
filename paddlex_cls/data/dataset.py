"""ClsDataset: label.txt + train.txt/val.txt read by the same parser check_dataset uses."""
from __future__ import annotations

import os
import random
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DatasetError
from ..preprocess.image_io import load_image
from .annotations import LABEL_FILE, SPLIT_FILES, SplitSamples, parse_dataset


class ImageReadError(DatasetError):
    """An image listed in the dataset could not be read while training or evaluating."""


class ClsDataset:
    """A split of a ClsDataset folder; items are ``(CHW float32 array, int64 label)`` numpy pairs.

    numpy (not paddle Tensors) so the DataLoader can run workers without shared memory (platform facts).

    An unreadable image does not raise inside ``__getitem__``: Paddle's DataLoader hangs (no workers) or replaces the
    error by a generic one (workers). The item comes back as a zero image with label ``-1 - index`` instead, and
    ``check_batch`` (called by the trainer and the evaluator in the main process) raises ImageReadError naming the
    list file and line.
    """

    def __init__(self, root: str, split: str, transform: Callable, seed: Optional[int] = None,
                 image_size: int = 224):
        ann = parse_dataset(root, (split,), check_exists=True)
        ann.raise_if_problems()
        self.root = ann.root
        self.split = split
        self.labels: Dict[int, str] = ann.labels
        self.samples: SplitSamples = ann.splits[split]
        self.transform = transform
        self.seed = seed
        self.epoch = 0
        self.image_size = image_size

    def set_epoch(self, epoch: int) -> None:
        """Random augmentation of item i in epoch e depends on (seed, e, i) only: workers and resume agree."""
        self.epoch = epoch

    def labels_array(self) -> np.ndarray:
        """The class id of every sample, in order."""
        return np.asarray(self.samples.labels, dtype=np.int64)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, idx: int) -> Tuple[np.ndarray, np.ndarray]:
        s = self.samples[idx]
        if self.seed is not None:
            item_seed = (self.seed * 1_000_003 + self.epoch * 10_007 + idx) % (2 ** 32)
            random.seed(item_seed)
            np.random.seed(item_seed)
        try:
            img = load_image(s.path)
        except Exception:  # PIL raises many types for a broken file; check_batch reports it
            return np.zeros((3, self.image_size, self.image_size), np.float32), np.asarray(-1 - idx, dtype=np.int64)
        return self.transform(img), np.asarray(s.label, dtype=np.int64)

    def check_batch(self, labels: np.ndarray) -> None:
        """Raise ImageReadError for the first unreadable image of a batch (see the class docstring)."""
        bad = labels[labels < 0]
        if bad.size:
            s = self.samples[int(-1 - bad.flat[0])]
            try:
                load_image(s.path)
                why = "read failed"
            except Exception as e:  # noqa: BLE001  re-read in this process to name the real cause
                why = f"{type(e).__name__}: {e}"
            raise ImageReadError(f"{SPLIT_FILES[self.split]}:{s.line}: cannot read image {s.path} ({why})",
                                 "replace or remove the file; run -o Global.mode=check_dataset "
                                 "-o CheckDataset.verify_images=full to find every broken image")


def label_names(root: str) -> List[str]:
    """Class names in id order, read from ``<root>/label.txt``."""
    ann = parse_dataset(root, ())
    ann.raise_if_problems()
    if not ann.labels:
        raise DatasetError(f"{os.path.join(root, LABEL_FILE)} lists no classes", "add '<id> <name>' lines")
    return [ann.labels[i] for i in range(len(ann.labels))]
