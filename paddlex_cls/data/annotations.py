"""Parsing a ClsDataset's label.txt and list files (train.txt, val.txt, test.txt): the one parser check_dataset and
training share.

Lenient where PaddleX is strict for no reason (tabs or runs of spaces, paths with spaces, CRLF, a UTF-8 BOM, blank
lines, any folder layout, absolute paths and paths through symlinks or ``..``, as PaddleX and PaddleClas accept) and
strict where PaddleX is silent (every line is checked; labels must be label.txt ids; images must be regular files).

Problems are collected, not raised one at a time, so a user sees all of them at once, and one mistake gives one
message: a broken label.txt entry is reported once, and list lines that use ids label.txt does not define are then
summarised in one note instead of being listed one by one. Quoted text is cut to ``QUOTE_CHARS``, so a 10 MB line
never lands whole in a message.

Memory stays small at scale: a list line costs three array items (line number, image index, label) and each distinct
image path is stored once (``PathTable``); ``Sample`` tuples are built on access.
"""
from __future__ import annotations

import os
import stat
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterator, List, NamedTuple, Optional, Sequence, TextIO, Tuple, overload

from ..errors import DatasetError
from ..log import logger

LABEL_FILE = "label.txt"
SPLIT_FILES = {"train": "train.txt", "val": "val.txt", "test": "test.txt"}
QUOTE_CHARS = 100
MAX_ID_DIGITS = 9  # a class id above 999,999,999 is a typo; checking the length first keeps int() off huge strings
_PLAIN_SEP = os.sep == "/" and not os.altsep  # paths can be joined by concatenation when already normal
KEEP_PER_FILE = 1000  # problems kept (in line order) per file and kind; more are only counted
PENDING_SUFFIX = ".swap_new"  # a list file's replacement waiting to be swapped in (dataset_check.list_swap)


def quote(text: str, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of ``text`` cut to about ``limit`` characters with an ellipsis and the full length."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the dataset, located by file and line (0 = the file as a whole)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else f"{self.file}: {self.message}"


class ProblemLog:
    """Problems found so far: every one counted, the first ``keep`` of each (file, kind) kept in the order added.

    Kinds are added in line order (list lines as parsed, image problems sorted), so the first N kept problems of all
    kinds, sorted, are the first N problems of the dataset for any N <= ``keep``.
    """

    def __init__(self, keep: int = KEEP_PER_FILE) -> None:
        self.keep = keep
        self.items: List[Problem] = []
        self.total = 0
        self._counts: Counter = Counter()

    def append(self, problem: Problem, kind: str = "line") -> None:
        self.total += 1
        self._counts[problem.file, kind] += 1
        if self._counts[problem.file, kind] <= self.keep:
            self.items.append(problem)

    def extend(self, problems: Sequence[Problem], kind: str = "line") -> None:
        for p in problems:
            self.append(p, kind)

    def __len__(self) -> int:
        return self.total

    def __iter__(self) -> Iterator[Problem]:
        return iter(self.items)


class Sample(NamedTuple):
    """One annotated image: absolute path, label id, line of its list file (1-based)."""

    path: str
    label: int
    line: int


class PathTable:
    """Every distinct image of a dataset, stored once, with where it is first listed.

    An image is stored as its key: the normalised path relative to the dataset folder when it lies inside, else the
    absolute path (listed as absolute, or leading out through '..').

    Args:
        root: the dataset folder (absolute); relative paths are joined to it.
        on_batch: called with (first index, absolute paths) for each ``batch`` new images and at ``flush``, so image
            checks can start while the lists are still being read.
    """

    def __init__(self, root: str, on_batch: Optional[Callable[[int, List[str]], None]] = None,
                 batch: int = 2048) -> None:
        self.root = root
        self.prefix = os.path.join(root, "")
        self.keys: List[str] = []
        self.files: List[str] = []  # list file names; first_file holds indexes into it
        self.first_file = array("B")
        self.first_line = array("I")
        self.outside = 0  # images not under root
        self.by_text: Dict[str, int] = {}  # image index by the text a list line gives (while lists are read)
        self._on_batch, self._batch, self._sent = on_batch, batch, 0

    def file_number(self, name: str) -> int:
        if name not in self.files:
            self.files.append(name)
        return self.files.index(name)

    def add(self, text: str, file_no: int, line: int) -> int:
        """The index of the image written ``text`` in a list (a new image is recorded with its location)."""
        idx = self.by_text.get(text)
        if idx is not None:
            return idx
        if _PLAIN_SEP and text[0] not in "/." and "/." not in text and "//" not in text:
            key = text  # already normal and relative: the common case, no normpath needed
        else:
            full = os.path.normpath(os.path.join(self.root, text))  # an absolute ``text`` stays as it is
            inside = full.startswith(self.prefix)
            key = full[len(self.prefix):] if inside else full
            idx = self.by_text.get(key)
            if idx is not None:
                self.by_text[text] = idx
                return idx
            self.outside += not inside
            self.by_text[text] = len(self.keys)
        idx = len(self.keys)
        self.keys.append(key)
        self.by_text[key] = idx
        self.first_file.append(file_no)
        self.first_line.append(line)
        if idx + 1 - self._sent >= self._batch and self._on_batch is not None:
            self.flush()
        return idx

    def full(self, idx: int) -> str:
        """The absolute path of image ``idx``."""
        key = self.keys[idx]
        return key if os.path.isabs(key) else self.prefix + key

    @property
    def paths(self) -> List[str]:
        """Every image's absolute path, by index."""
        return [self.full(i) for i in range(len(self.keys))]

    def flush(self) -> None:
        """Hand the images not yet handed to ``on_batch``."""
        if self._on_batch is not None and len(self.keys) > self._sent:
            start, self._sent = self._sent, len(self.keys)
            self._on_batch(start, [self.full(i) for i in range(start, self._sent)])

    def done(self) -> None:
        """Flush and drop the lookup dict (only needed while lists are read)."""
        self.flush()
        self.by_text = {}

    def display(self, idx: int) -> str:
        """The path as a user knows it: relative to the dataset folder when inside it, else absolute."""
        return self.keys[idx]

    def location(self, idx: int) -> Tuple[str, int]:
        """(list file, line) where the image is first listed."""
        return self.files[self.first_file[idx]], self.first_line[idx]


class SplitSamples(Sequence[Sample]):
    """The samples of one list file as three compact arrays over a shared ``PathTable``."""

    def __init__(self, file: str, table: PathTable) -> None:
        self.file = file
        self.table = table
        self.lines = array("I")
        self.path_ids = array("I")
        self.labels = array("i")

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, i: int) -> Sample: ...

    @overload
    def __getitem__(self, i: slice) -> List[Sample]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        return Sample(self.table.full(self.path_ids[i]), self.labels[i], self.lines[i])

    def __getstate__(self) -> dict:
        # Data-loader workers get a pickled dataset: the image keys and arrays, not the lookup state.
        return {"file": self.file, "root": self.table.root, "keys": self.table.keys, "lines": self.lines,
                "path_ids": self.path_ids, "labels": self.labels}

    def __setstate__(self, state: dict) -> None:
        self.table = PathTable(state.pop("root"))
        self.table.keys = state.pop("keys")
        self.__dict__.update(state)


@dataclass
class Annotations:
    """Everything parsed from a dataset folder."""

    root: str
    labels: Dict[int, str] = field(default_factory=dict)
    splits: Dict[str, SplitSamples] = field(default_factory=dict)
    problems: ProblemLog = field(default_factory=ProblemLog)
    warnings: List[str] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)  # said once after the problems (e.g. checks skipped)
    paths: Optional[PathTable] = None

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def raise_if_problems(self, max_errors: int = 50) -> None:
        """Raise one DatasetError listing the problems (capped) if there are any."""
        if self.problems:
            order = {name: k for k, name in enumerate([LABEL_FILE, *SPLIT_FILES.values()])}
            listed = sorted(self.problems, key=lambda p: (order.get(p.file, len(order)), p.file, p.line))
            raise DatasetError(format_problems(self.root, listed, max_errors, len(self.problems), self.notes),
                               "fix the lines listed above (paths are relative to the dataset folder or absolute; "
                               "each list line is '<image path> <label id>'; label.txt lines are '<id> <class name>')")


def format_problems(root: str, problems: Sequence[Problem], max_errors: int, total: Optional[int] = None,
                    notes: Sequence[str] = ()) -> str:
    """The problems as one message: a count, the first ``max_errors``, then ``notes``."""
    total = len(problems) if total is None else total
    lines = [f"dataset {root} has {total} problem(s):"]
    lines += [f"  {p}" for p in problems[:max_errors]]
    if total > max_errors:
        lines.append(f"  ... and {total - max_errors} more (raise CheckDataset.max_errors to list them)")
    lines += [f"Note: {note}" for note in notes]
    return "\n".join(lines)


def _first_bad_line(path: str) -> Tuple[int, int]:
    """(1-based line, byte) of the first byte that is not UTF-8; lines end at LF, CRLF or CR as in text mode."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        head = data[: e.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        return head.count(b"\n") + 1, data[e.start]
    return 0, 0


def _open_text(path: str, problems: ProblemLog) -> Optional[TextIO]:
    """The file opened as UTF-8 text (BOM dropped, any line ends), or None with a problem when it is missing."""
    if not os.path.isfile(path):
        problems.append(Problem(os.path.basename(path), 0, f"missing: {path} does not exist"))
        return None
    return open(path, encoding="utf-8-sig", newline=None)


def _not_utf8(path: str) -> Problem:
    line, byte = _first_bad_line(path)
    return Problem(os.path.basename(path), line, f"not UTF-8 text (byte 0x{byte:02x}); save the file as UTF-8")


def iter_text_lines(path: str, problems: ProblemLog) -> Iterator[Tuple[int, str]]:
    """Non-blank lines (stripped) with their 1-based numbers; UTF-8 with or without BOM, any line ends.

    A missing file or a byte that is not UTF-8 is one problem; lines before the bad byte are still yielded.
    """
    f = _open_text(path, problems)
    if f is None:
        return
    with f:
        try:
            for num, text in enumerate(f, 1):
                text = text.strip()
                if text:
                    yield num, text
        except UnicodeDecodeError:
            problems.append(_not_utf8(path))


def _class_id(raw: str) -> Optional[int]:
    """The id written ``raw`` if it is a whole number of at most MAX_ID_DIGITS digits, else None."""
    if raw.isascii() and raw.isdigit() and len(raw.lstrip("0")) <= MAX_ID_DIGITS:
        return int(raw)
    return None


def read_labels(path: str, problems: ProblemLog, warnings: List[str]) -> Tuple[Dict[int, str], bool]:
    """label.txt: ``<id> <class name>``; returns (names by id, whether the file is free of problems).

    Ids are the identity of a class and must be unique and 0..n-1; names are display text and may repeat
    (ImageNet-1k's list names "crane" twice): duplicates are accepted with one warning naming their ids.
    """
    name = os.path.basename(path)
    before = len(problems)
    labels: Dict[int, str] = {}
    lines = 0
    unreadable_id = False
    for num, text in iter_text_lines(path, problems):
        lines += 1
        raw_id = text.split(None, 1)[0]
        class_name = text[len(raw_id):].strip()
        cid = _class_id(raw_id)
        if cid is None:
            unreadable_id = True
            problems.append(Problem(name, num, f"class id {quote(raw_id)} is not a whole number from 0 to "
                                               f"999,999,999; lines are '<id> <class name>'"))
        elif cid in labels:
            problems.append(Problem(name, num, f"class id {cid} is listed twice (also as {quote(labels[cid])})"))
        else:
            labels[cid] = class_name or str(cid)  # a nameless id is still an id: lines using it are not errors
            if not class_name:
                problems.append(Problem(name, num, f"expected '<id> <class name>', got {quote(text)} (no name)"))
    if not lines and len(problems) == before:
        problems.append(Problem(name, 0, "is empty; list one '<id> <class name>' per line"))
    elif labels and not unreadable_id and sorted(labels) != list(range(len(labels))):
        # Only when every id was readable: an unreadable line may be the "missing" id, and one mistake gets one message.
        missing = sorted(set(range(max(labels) + 1)) - set(labels))
        problems.append(Problem(name, 0, f"class ids must be 0..{len(labels) - 1} without gaps; found "
                                         f"{min(labels)}..{max(labels)}, missing {missing[:10]}"))
    _warn_duplicate_names(name, labels, warnings)
    return labels, len(problems) == before


def _warn_duplicate_names(file: str, labels: Dict[int, str], warnings: List[str]) -> None:
    ids_by_name: Dict[str, List[int]] = {}
    for cid, class_name in labels.items():
        ids_by_name.setdefault(class_name, []).append(cid)
    shared = {n: ids for n, ids in ids_by_name.items() if len(ids) > 1}
    if shared:
        listed = ", ".join(f"{quote(n)} (ids {', '.join(map(str, ids))})" for n, ids in list(shared.items())[:10])
        more = f" and {len(shared) - 10} more" if len(shared) > 10 else ""
        warnings.append(f"{file}: {len(shared)} class name(s) used by more than one id: {listed}{more}; accepted "
                        "(ids identify classes, names are only shown), rename them if the classes differ")


def parse_labels(path: str, problems: List[Problem]) -> Dict[int, str]:
    """label.txt's names by id, appending its problems to ``problems`` (see ``read_labels``)."""
    log = ProblemLog()
    warnings: List[str] = []
    labels, _ = read_labels(path, log, warnings)
    problems.extend(log)
    for w in warnings:
        _warn_once(w)
    return labels


def _label_problem(raw: str, labels: Dict[int, str]) -> str:
    ids = f"{LABEL_FILE} ids are 0..{len(labels) - 1}" if labels else f"{LABEL_FILE} defines no ids"
    if raw.isascii() and raw.isdigit():
        return f"label {quote(raw)} is a {len(raw.lstrip('0')):,}-digit number, not a class id ({ids})"
    return f"label {quote(raw)} is not an integer id ({ids})"


def parse_split(path: str, table: PathTable, labels: Dict[int, str], problems: ProblemLog,
                unchecked: Optional[List[Tuple[str, int, int]]] = None) -> SplitSamples:
    """A list file: ``<image path> <label id>``; the label is the last field, so paths may hold spaces.

    Args:
        unchecked: when given (label.txt has problems), lines whose label is a well-formed id that label.txt lacks
            are appended to it as (file, line, label) instead of each being a problem: one mistake, one message.
    """
    name = os.path.basename(path)
    out = SplitSamples(name, table)
    f = _open_text(path, problems)
    if f is None:
        return out
    file_no = table.file_number(name)
    ids = {str(cid): cid for cid in labels}  # the usual spelling of each id: most lines need no int()
    before = len(problems)
    # The loop runs once per line (millions): locals only, and the path table is consulted only for new text.
    add_line, add_path, add_label = out.lines.append, out.path_ids.append, out.labels.append
    known, add = table.by_text.get, table.add
    with f:
        try:
            for num, text in enumerate(f, 1):
                parts = text.rsplit(None, 1)
                if len(parts) != 2:
                    if parts:  # blank lines are skipped
                        problems.append(Problem(name, num, f"expected '<image path> <label id>', got "
                                                           f"{quote(text.strip())}"))
                    continue
                rel, raw_label = parts
                label = ids.get(raw_label)
                if label is None:
                    label = _odd_label(raw_label, labels, name, num, problems, unchecked)
                    if label is None:
                        continue
                idx = known(rel)
                add_line(num)
                add_path(add(rel.lstrip(), file_no, num) if idx is None else idx)
                add_label(label)
        except UnicodeDecodeError:
            problems.append(_not_utf8(path))
    if not len(out) and len(problems) == before:
        problems.append(Problem(name, 0, "has no samples; every split needs at least one image"))
    return out


def _odd_label(raw: str, labels: Dict[int, str], file: str, line: int, problems: ProblemLog,
               unchecked: Optional[List[Tuple[str, int, int]]]) -> Optional[int]:
    """The id of a label not written the usual way (e.g. "007"), or None after recording why it is not one."""
    cid = _class_id(raw)
    if cid is None:
        problems.append(Problem(file, line, _label_problem(raw, labels)))
    elif cid not in labels:
        if unchecked is None:
            problems.append(Problem(file, line, f"label {cid} is not an id in {LABEL_FILE} (ids are "
                                                f"0..{len(labels) - 1})"))
        else:
            unchecked.append((file, line, cid))
    else:
        return cid
    return None


def file_problem(path: str) -> Optional[str]:
    """Why ``path`` cannot be an image file (missing, a folder, a FIFO, empty...), or None; never opens it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "does not exist" + (" (it is a symlink to a missing file)" if os.path.islink(path) else "")
    except NotADirectoryError:
        return "does not exist (a part of its path is a file, not a folder)"
    except OSError as e:  # permission denied, name too long, symlink loop
        return f"cannot be read ({e.strerror})"
    except ValueError:
        return "has a NUL character in its path"
    if stat.S_ISREG(st.st_mode):
        return None if st.st_size else "is an empty file (0 bytes)"
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    kind = next((text for test, text in kinds if test(st.st_mode)), "a special file")
    return f"is {kind}, not a regular file"


def add_image_problems(ann: Annotations, found: Sequence[Tuple[int, str]]) -> None:
    """Record (image index, why) pairs as problems at each image's first line, sorted, with how often it is listed."""
    if not found:
        return
    table = ann.paths
    bad = {idx for idx, _ in found}
    times: Counter = Counter()
    for samples in ann.splits.values():
        times.update(pid for pid in samples.path_ids if pid in bad)
    located = sorted(found, key=lambda f: (table.first_file[f[0]], table.first_line[f[0]]))
    for idx, why in located:
        file, line = table.location(idx)
        again = f" (listed {times[idx]} times; this is the first)" if times[idx] > 1 else ""
        ann.problems.append(Problem(file, line, f"image {quote(table.display(idx))} {why}{again}"), "image")


_warned: set = set()


def _warn_once(message: str) -> None:
    # Training parses label.txt several times (resolve, each split, names): one warning is enough.
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def parse_dataset(root: str, splits: Tuple[str, ...] = ("train", "val"), check_exists: bool = True,
                  on_paths: Optional[Callable[[int, List[str]], None]] = None,
                  keep: int = KEEP_PER_FILE) -> Annotations:
    """Parse label.txt and the given splits of a dataset folder, collecting every problem.

    Args:
        root: the dataset folder.
        splits: which list files to read (keys of ``SPLIT_FILES``).
        check_exists: check that every distinct image is a regular, non-empty file (here, one by one).
        on_paths: receives new distinct image paths in batches while the lists are read (see ``PathTable``).
        keep: problems kept per file and kind; more are counted.
    """
    root = os.path.abspath(root)
    ann = Annotations(root, problems=ProblemLog(keep), paths=PathTable(root, on_paths))
    ann.splits = {split: SplitSamples(SPLIT_FILES[split], ann.paths) for split in splits}
    if not os.path.isdir(root):
        ann.problems.append(Problem(root, 0, "dataset folder does not exist; set -o Global.dataset_dir=<folder>"))
        return ann
    for split in splits:
        if os.path.exists(os.path.join(root, SPLIT_FILES[split] + PENDING_SUFFIX)):
            ann.problems.append(Problem(SPLIT_FILES[split], 0, f"{SPLIT_FILES[split]}{PENDING_SUFFIX} exists: "
                                        "a conversion or split of this dataset was interrupted; run "
                                        "-o Global.mode=check_dataset once to finish or undo it"))
    ann.labels, labels_ok = read_labels(os.path.join(root, LABEL_FILE), ann.problems, ann.warnings)
    for w in ann.warnings:
        _warn_once(w)
    unchecked: Optional[List[Tuple[str, int, int]]] = None if labels_ok else []
    for split in splits:
        ann.splits[split] = parse_split(os.path.join(root, SPLIT_FILES[split]), ann.paths, ann.labels, ann.problems,
                                        unchecked)
    if unchecked:
        file, line, label = unchecked[0]
        ann.notes.append(f"{len(unchecked)} list line(s) use label ids that {LABEL_FILE} does not define (first: "
                         f"{file}:{line}, label {label}); they are not listed one by one because {LABEL_FILE} has "
                         "the problem(s) above: fix it first")
    ann.paths.done()
    if check_exists:
        found = [(idx, why) for idx in range(len(ann.paths.keys)) if (why := file_problem(ann.paths.full(idx)))]
        add_image_problems(ann, found)
    return ann
