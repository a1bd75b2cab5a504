"""Official ImageNet-1k models used without a model folder, as PaddleX users do: ``create_model("PP-LCNet_x1_0")``.

The official weights are fetched once (``hub``), exported once into ``<PADDLEX_CLS_HOME>/official_models/<Model>/
inference`` with the ImageNet-1k class names, and that folder is reused afterwards (also offline). Only this first
export needs the model zoo and paddle's exporter; predicting from the cached folder does not.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
from functools import lru_cache
from typing import Dict, Iterator, List

from .fileio import mark_owned, replace_dir
from .hub import official_inference_dir, official_weights
from .log import logger

IMAGENET_LABELS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "resources", "imagenet1k_labels.txt")
IMAGENET_CLASSES = 1000


@lru_cache(maxsize=1)
def imagenet_labels() -> List[str]:
    """The 1000 ImageNet-1k class names in id order (the names PaddleX's official exports carry)."""
    with open(IMAGENET_LABELS, encoding="utf-8") as f:
        return [line.rstrip("\n").split(" ", 1)[1] for line in f if line.strip()]


def official_shapes(model_name: str) -> Dict[str, list]:
    """``{key: shape}`` of the official 1000-class weights of ``model_name``, from the registry (no allocation)."""
    import paddle

    from .models import get_entry

    with paddle.LazyGuard():
        net = get_entry(model_name).build(num_classes=IMAGENET_CLASSES)
    return {k: list(v.shape) for k, v in net.state_dict().items()}


def _complete(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "inference.yml")) and os.path.isfile(
        os.path.join(folder, "inference.pdiparams"))


@contextlib.contextmanager
def _exporting(folder: str) -> Iterator[None]:
    """One process exports a given model at a time; the others wait and then reuse its folder."""
    os.makedirs(os.path.dirname(folder), exist_ok=True)
    fd = os.open(folder + ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def official_model_dir(model_name: str) -> str:
    """The cached inference folder of the official ``model_name``, made on first use (download + export)."""
    target = official_inference_dir(model_name)
    if _complete(target):
        return target
    with _exporting(target):
        if _complete(target):
            return target
        from .engine.exporter import ExportSpec, export_model

        weights = official_weights(model_name, expected=lambda: official_shapes(model_name))
        logger.info("exporting the official %s once into %s", model_name, target)
        staging = os.path.join(os.path.dirname(target), ".inference.new")
        export_model(ExportSpec(model_name=model_name, num_classes=IMAGENET_CLASSES, weights=weights,
                                out_dir=staging, labels=imagenet_labels(), use_ema=False))
        mark_owned(staging)
        replace_dir(staging, target)
    return target
