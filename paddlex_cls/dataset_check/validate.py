"""Validating a whole dataset: every line of every list, every distinct image, and no image in two splits.

The lists are read once, line by line, into compact arrays (``data.annotations``); each distinct image is checked
once however often it is listed, by ``ImageChecker`` in worker processes that start while the lists are still being
read.
"""
from __future__ import annotations

import os
from itertools import combinations
from typing import Dict, List, Optional, Tuple

from ..data.annotations import (
    KEEP_PER_FILE,
    SPLIT_FILES,
    Annotations,
    Problem,
    add_image_problems,
    parse_dataset,
    quote,
)
from .image_check import ImageChecker


def present_splits(root: str) -> Tuple[str, ...]:
    """train and val (required), plus test when ``test.txt`` exists."""
    return ("train", "val") + (("test",) if os.path.isfile(os.path.join(root, SPLIT_FILES["test"])) else ())


def _first_lines(ann: Annotations, split: str, wanted: set) -> Dict[int, int]:
    found: Dict[int, int] = {}
    samples = ann.splits[split]
    for line, pid in zip(samples.lines, samples.path_ids):
        if pid in wanted and pid not in found:
            found[pid] = line
    return found


def overlap_problems(ann: Annotations) -> List[Problem]:
    """One problem per image listed in two splits, at its first line in the first, naming the line in the other."""
    problems = []
    present = {split: set(samples.path_ids) for split, samples in ann.splits.items()}
    for a, b in combinations(ann.splits, 2):
        both = present[a] & present[b]
        if not both:
            continue
        lines_a, lines_b = _first_lines(ann, a, both), _first_lines(ann, b, both)
        for pid in sorted(both, key=lines_a.__getitem__):
            problems.append(Problem(SPLIT_FILES[a], lines_a[pid], f"image {quote(ann.paths.display(pid))} is also "
                                    f"listed in {SPLIT_FILES[b]}:{lines_b[pid]}; an image belongs in one split only "
                                    f"(a {b} image seen in {a} makes the {b} score meaningless)"))
    return problems


def validate_dataset(root: str, verify: str = "header", workers: Optional[int] = None, max_errors: int = 50,
                     splits: Optional[Tuple[str, ...]] = None, allow_overlap: bool = False) -> Annotations:
    """Parse and check every line and image of the dataset; raises DatasetError listing all problems.

    Args:
        root: the dataset folder.
        verify: ``header`` reads each image's header, ``full`` decodes each image.
        workers: processes for the image checks; None = all cores.
        max_errors: problems listed in the error (all are counted).
        splits: list files to read; None = train, val and test when test.txt exists.
        allow_overlap: accept images listed in two splits (a re-split is about to fix that).
    """
    with ImageChecker(full=verify == "full", workers=workers) as checker:
        ann = parse_dataset(root, splits or present_splits(root), check_exists=False, on_paths=checker,
                            keep=max(max_errors, KEEP_PER_FILE))
        add_image_problems(ann, checker.results())
    if not allow_overlap:
        ann.problems.extend(overlap_problems(ann), kind="overlap")
    ann.raise_if_problems(max_errors)
    return ann
