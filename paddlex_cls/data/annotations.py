"""Parsing a ClsDataset's label.txt / train.txt / val.txt: the one parser check_dataset and training share.

Lenient where PaddleX is strict for no reason (tabs or runs of spaces, paths with spaces, CRLF, a UTF-8 BOM, blank
lines, any folder layout) and strict where PaddleX is silent (every line is checked, labels must be label.txt ids,
paths must stay inside the dataset folder). Problems are collected, not raised one at a time, so a user sees all of
them at once.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from ..errors import DatasetError

LABEL_FILE = "label.txt"
SPLIT_FILES = {"train": "train.txt", "val": "val.txt"}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset, located by file and line (0 = the file as a whole)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


@dataclass(frozen=True)
class Sample:
    """One annotated image: absolute path, label id, where it was declared."""

    path: str
    label: int
    line: int
    text: str  # the line as written (without line end), so a re-split can keep the user's own text


@dataclass
class Annotations:
    """Everything parsed from a dataset folder."""

    root: str
    labels: Dict[int, str] = field(default_factory=dict)
    splits: Dict[str, List[Sample]] = field(default_factory=dict)
    problems: List[Problem] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def raise_if_problems(self, max_errors: int = 50) -> None:
        """Raise one DatasetError listing the problems (capped) if there are any."""
        if self.problems:
            raise DatasetError(format_problems(self.root, self.problems, max_errors),
                               "fix the lines listed above (paths are relative to the dataset folder; each list "
                               "line is '<image path> <label id>'; label.txt lines are '<id> <class name>')")


def format_problems(root: str, problems: List[Problem], max_errors: int) -> str:
    lines = [f"dataset {root} has {len(problems)} problem(s):"]
    lines += [f"  {p}" for p in problems[:max_errors]]
    if len(problems) > max_errors:
        lines.append(f"  ... and {len(problems) - max_errors} more (raise CheckDataset.max_errors to list them)")
    return "\n".join(lines)


def read_text_lines(path: str, problems: List[Problem]) -> Optional[List[Tuple[int, str]]]:
    """Non-blank lines with their 1-based numbers; UTF-8 with or without BOM, any line ends."""
    name = os.path.basename(path)
    if not os.path.isfile(path):
        problems.append(Problem(name, 0, f"missing: {path} does not exist"))
        return None
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        problems.append(Problem(name, line, f"not UTF-8 text (byte 0x{data[e.start]:02x}); save the file as UTF-8"))
        return None
    return [(i, s.strip()) for i, s in enumerate(text.splitlines(), 1) if s.strip()]


def parse_labels(path: str, problems: List[Problem]) -> Dict[int, str]:
    """label.txt: ``<id> <class name>``; ids unique and 0..n-1, names unique and non-empty."""
    lines = read_text_lines(path, problems)
    if lines is None:
        return {}
    labels: Dict[int, str] = {}
    names: Dict[str, int] = {}
    for num, text in lines:
        parts = text.split(None, 1)
        if len(parts) < 2:
            problems.append(Problem(LABEL_FILE, num, f"expected '<id> <class name>', got {text!r}"))
            continue
        raw_id, name = parts[0], parts[1].strip()
        if not raw_id.lstrip("-").isdigit():
            problems.append(Problem(LABEL_FILE, num, f"class id {raw_id!r} is not an integer"))
            continue
        cid = int(raw_id)
        if cid in labels:
            problems.append(Problem(LABEL_FILE, num, f"class id {cid} is listed twice"))
        elif name in names:
            problems.append(Problem(LABEL_FILE, num, f"class name {name!r} is used by ids {names[name]} and {cid}"))
        else:
            labels[cid] = name
            names[name] = cid
    if not lines:
        problems.append(Problem(LABEL_FILE, 0, "is empty; list one '<id> <class name>' per line"))
    elif labels and sorted(labels) != list(range(len(labels))):
        missing = sorted(set(range(max(labels) + 1)) - set(labels))[:10]
        problems.append(Problem(LABEL_FILE, 0, f"class ids must be 0..{len(labels) - 1} without gaps; "
                                               f"found {min(labels)}..{max(labels)}, missing {missing}"))
    return labels


def resolve_inside(root: str, rel: str) -> Optional[str]:
    """The absolute path of ``rel`` under ``root``, or None if it is absolute or escapes ``root``."""
    if os.path.isabs(rel) or rel.startswith(("\\", "/")):
        return None
    full = os.path.normpath(os.path.join(root, rel))
    root_n = os.path.normpath(root)
    return full if full.startswith(root_n + os.sep) else None


def parse_split(path: str, root: str, labels: Dict[int, str], problems: List[Problem],
                check_exists: bool = True) -> List[Sample]:
    """A list file: ``<relative image path> <label id>``; the label is the last field, so paths may hold spaces."""
    name = os.path.basename(path)
    lines = read_text_lines(path, problems)
    if lines is None:
        return []
    samples: List[Sample] = []
    for num, text in lines:
        parts = text.rsplit(None, 1)
        if len(parts) < 2:
            problems.append(Problem(name, num, f"expected '<image path> <label id>', got {text!r}"))
            continue
        rel, raw_label = parts[0].strip(), parts[1]
        if not raw_label.lstrip("-").isdigit():
            problems.append(Problem(name, num, f"label {raw_label!r} is not an integer id"))
            continue
        label = int(raw_label)
        if labels and label not in labels:
            problems.append(Problem(name, num, f"label {label} is not an id in {LABEL_FILE} "
                                               f"(ids are 0..{len(labels) - 1})"))
            continue
        full = resolve_inside(root, rel)
        if full is None:
            problems.append(Problem(name, num, f"image path {rel!r} must be relative and stay inside {root}"))
            continue
        if check_exists and not os.path.isfile(full):
            what = "is a folder, not an image file" if os.path.isdir(full) else "does not exist"
            problems.append(Problem(name, num, f"image {rel!r} {what}"))
            continue
        samples.append(Sample(full, label, num, text))
    if not samples and not any(p.file == name for p in problems):
        problems.append(Problem(name, 0, "has no samples; every split needs at least one image"))
    return samples


def parse_dataset(root: str, splits: Tuple[str, ...] = ("train", "val"), check_exists: bool = True) -> Annotations:
    """Parse label.txt and the given splits of a dataset folder, collecting every problem."""
    root = os.path.abspath(root)
    ann = Annotations(root)
    if not os.path.isdir(root):
        ann.problems.append(Problem(root, 0, "dataset folder does not exist; set -o Global.dataset_dir=<folder>"))
        ann.splits = {split: [] for split in splits}
        return ann
    ann.labels = parse_labels(os.path.join(root, LABEL_FILE), ann.problems)
    for split in splits:
        ann.splits[split] = parse_split(os.path.join(root, SPLIT_FILES[split]), root, ann.labels, ann.problems,
                                        check_exists)
    return ann
