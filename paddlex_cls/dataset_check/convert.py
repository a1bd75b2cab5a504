"""Converting a folder-per-class dataset (torchvision's ImageFolder, Ultralytics' classify layout) to a ClsDataset:
label.txt, train.txt and val.txt (and test.txt) are written beside the images, which are never moved or rewritten.

Layouts of ``dataset_dir``:
  - ``<class>/<images>``: a seeded split of each class folder by ``CheckDataset.split.val_percent`` (a class with
    one image goes to train);
  - ``train/<class>/<images>`` with ``val/<class>/...`` (and ``test/<class>/...``): the folders are the splits;
    without ``val/``, train is split as above.

Classes are the folder names in sorted order (ids 0..n-1). Images are files with an image extension at any depth of
a class folder; hidden files and other files are skipped and counted. An empty class folder is an error naming it.
The lists are replaced all together through ``list_swap`` (existing ones kept as .bak), so a run repeated on the same
folder gives the same files.
"""
from __future__ import annotations

import os
import random
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..data.annotations import LABEL_FILE, SPLIT_FILES, quote
from ..errors import ConfigError, DatasetError
from ..log import logger
from ..preprocess.image_io import IMAGE_EXTS
from .list_swap import swap_lists

SUPPORTED = ("ImageFolder",)
SPLIT_DIRS = ("train", "val", "test")
DEFAULT_VAL_PERCENT = 20


def check_source_type(value: Optional[str]) -> str:
    """The supported spelling of ``CheckDataset.convert.src_dataset_type``; ConfigError when it is unset or unknown."""
    hint = "set -o CheckDataset.convert.src_dataset_type=ImageFolder for a folder per class (<class>/<images>)"
    if value is None:
        raise ConfigError("CheckDataset.convert.enable is true but CheckDataset.convert.src_dataset_type is not set",
                          hint)
    match = {s.lower(): s for s in SUPPORTED}.get(str(value).lower())
    if match is None:
        raise ConfigError(f"CheckDataset.convert.src_dataset_type={value!r} is not supported; supported: "
                          f"{', '.join(SUPPORTED)}. PaddleX's LabelMe-style conversion (flags.txt + "
                          "annotations/*.json) is not provided", hint)
    return match


def _listable(name: str) -> bool:
    # A list line is '<path> <label>', stripped: a name with a line break or edge whitespace cannot be written in one.
    return name == name.strip() and "\n" not in name and "\r" not in name


def _subfolders(folder: str, exclude: Sequence[str]) -> List[str]:
    with os.scandir(folder) as it:
        return sorted(e.name for e in it if e.is_dir() and not e.name.startswith(".")
                      and os.path.abspath(e.path) not in exclude)


def _images(root: str, folder: str, exclude: Sequence[str], skipped: List[str]) -> List[str]:
    """Image paths (relative to root, '/'-separated, sorted) at any depth of ``folder``; others go to ``skipped``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and os.path.abspath(os.path.join(dirpath, d)) not in exclude)
        for name in sorted(filenames):
            rel = os.path.relpath(os.path.join(dirpath, name), root).replace(os.sep, "/")
            ok = not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_EXTS and _listable(rel)
            (found if ok else skipped).append(rel)
    return found


def _scan(root: str, split_dir: str, exclude: Sequence[str], skipped: List[str]) -> Dict[str, List[str]]:
    """Images by class folder name under ``root/split_dir`` (``split_dir`` '' = root itself)."""
    base = os.path.join(root, split_dir) if split_dir else root
    classes = _subfolders(base, exclude)
    where = f"{split_dir}/" if split_dir else ""
    for name in classes:
        if not _listable(name):
            raise DatasetError(f"class folder {quote(where + name)} starts or ends with whitespace or holds a line "
                               "break, which a list file cannot hold", "rename the folder")
    found = {name: _images(root, os.path.join(base, name), exclude, skipped) for name in classes}
    empty = [where + name for name, files in found.items() if not files]
    if empty:
        raise DatasetError(f"class folder(s) with no images in {root}: {', '.join(map(quote, empty[:10]))}",
                           f"add images to them or remove them (image extensions: {', '.join(IMAGE_EXTS)})")
    return found


def _split_classes(by_class: Dict[str, List[str]], val_percent: int, seed: int) -> Tuple[Dict, Dict]:
    """A seeded per-class split; a class keeps at least one training image."""
    rng = random.Random(seed)
    train, val = {}, {}
    for name, files in by_class.items():
        n_val = min(round(len(files) * val_percent / 100), len(files) - 1)
        picked = set(rng.sample(range(len(files)), n_val))
        train[name] = [f for i, f in enumerate(files) if i not in picked]
        val[name] = [f for i, f in enumerate(files) if i in picked]
    return train, val


def _layout(root: str, exclude: Sequence[str]) -> str:
    """'splits' for train/ [val/ test/] folders, 'classes' for one folder per class."""
    top = _subfolders(root, exclude)
    if "train" not in top:
        if set(top) & {"val", "test"}:
            raise DatasetError(f"{root} has a val/ or test/ folder but no train/ folder",
                               "use <class>/<images> folders, or train/<class>/<images> (+ val/, test/)")
        if not top:
            raise DatasetError(f"{root} has no class folders", "put the images of each class in a folder named "
                               "after the class: <dataset_dir>/<class>/<images>")
        return "classes"
    others = [name for name in top if name not in SPLIT_DIRS]
    if others:
        raise DatasetError(f"{root} has a train/ folder beside other folders ({', '.join(map(quote, others[:5]))})",
                           "use either <class>/<images> folders, or train/<class>/<images> (+ val/, test/) only")
    return "splits"


def convert_image_folder(root: str, val_percent: int, seed: int, exclude: Sequence[str] = ()) -> Dict[str, Any]:
    """Write label.txt and the lists for a folder-per-class dataset; returns a summary for the result file.

    Args:
        root: the dataset folder.
        val_percent: share of each class folder that goes to val when there is no val/ folder.
        seed: seed of that split.
        exclude: folders that are not part of the dataset (e.g. the output folder inside it).
    """
    root = os.path.abspath(root)
    exclude = [os.path.abspath(p) for p in exclude]
    if not os.path.isdir(root):
        raise DatasetError(f"dataset folder {root} does not exist", "set -o Global.dataset_dir=<folder>")
    layout, skipped = _layout(root, exclude), []
    split_dirs = [d for d in SPLIT_DIRS if os.path.isdir(os.path.join(root, d))] if layout == "splits" else [""]
    scanned = {d or "train": _scan(root, d, exclude, skipped) for d in split_dirs}
    classes = sorted(scanned["train"])
    strays = sorted({f"{d}/{c}" for d, found in scanned.items() if d != "train" for c in found} -
                    {f"{d}/{c}" for d in scanned for c in classes})
    if strays:
        raise DatasetError(f"class folder(s) without a train/ counterpart: {', '.join(map(quote, strays[:10]))}",
                           "add the class to train/ or remove the folder")
    if "val" not in scanned:
        scanned["train"], scanned["val"] = _split_classes(scanned["train"], val_percent, seed)
    ids = {name: k for k, name in enumerate(classes)}
    texts = {LABEL_FILE: "".join(f"{k} {name}\n" for k, name in enumerate(classes))}
    counts = {}
    for split, found in scanned.items():
        lines = [f"{path} {ids[name]}\n" for name in classes for path in found.get(name, [])]
        texts[SPLIT_FILES[split]] = "".join(lines)
        counts[f"{split}_images"] = len(lines)
    changed = swap_lists(root, texts)
    split_how = "train/val/test folders" if "val" in split_dirs else f"val = {val_percent}% of each class, seed {seed}"
    logger.info("ImageFolder %s: %d classes, %s (%s); skipped %d file(s) that are not images%s", root, len(classes),
                ", ".join(f"{n} {k.split('_')[0]}" for k, n in counts.items()), split_how, len(skipped),
                f" (e.g. {quote(skipped[0])})" if skipped else "")
    return {"src_dataset_type": "ImageFolder", "layout": layout, "num_classes": len(classes), **counts,
            "skipped_files": len(skipped), "skipped_examples": skipped[:10], "written": changed}
