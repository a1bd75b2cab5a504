"""Checkpoints (``<name>/<name>.pdparams .pdopt .pdstates [.pdema]``), resume, and pretrained weights.

A checkpoint folder is written whole into a hidden temp folder and then swapped in by renames, so ``latest/`` and
``best_model/`` always hold one complete, consistent set of files: a crash at any moment leaves the previous set
(or, in the instant between the two renames, that set under ``.<name>.old/``, which loading falls back to).
"""
from __future__ import annotations

import os
import pickle
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np
import paddle

from ..errors import WeightsError
from ..fileio import atomic_path
from ..log import logger

CACHE_DIR = os.environ.get("PADDLEX_CLS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "paddlex_cls"))
DOWNLOAD_TIMEOUT = 30


def save_checkpoint(out_dir: str, name: str, model: Dict[str, Any], optimizer: Optional[Dict[str, Any]] = None,
                    states: Optional[Dict[str, Any]] = None, ema: Optional[Dict[str, Any]] = None) -> str:
    """Write ``<out_dir>/<name>/<name>.*`` (state dicts of numpy arrays) atomically as a set; returns the folder."""
    final = os.path.join(out_dir, name)
    tmp = os.path.join(out_dir, f".{name}.new")
    old = os.path.join(out_dir, f".{name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    prefix = os.path.join(tmp, name)
    paddle.save(model, prefix + ".pdparams")
    if optimizer is not None:
        paddle.save(optimizer, prefix + ".pdopt")
    if ema is not None:
        paddle.save(ema, prefix + ".pdema")
    paddle.save(dict(states or {}), prefix + ".pdstates")
    for fname in os.listdir(tmp):
        with open(os.path.join(tmp, fname), "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(final):
        os.rename(final, old)
    os.rename(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def _load(path: str, what: str) -> Any:
    if not os.path.isfile(path):
        # the instant between the two renames of save_checkpoint: the complete old set is under .<name>.old
        folder, fname = os.path.split(path)
        fallback = os.path.join(os.path.dirname(folder), f".{os.path.basename(folder)}.old", fname)
        if not os.path.isfile(fallback):
            raise WeightsError(f"{what} file {path} does not exist", "check the path (a .pdparams file, e.g. "
                               "output/latest/latest.pdparams)")
        path = fallback
    try:
        return paddle.load(path)
    except (pickle.UnpicklingError, EOFError, ValueError, OSError, RuntimeError, KeyError, TypeError) as e:
        raise WeightsError(f"{what} file {path} is corrupt or not a Paddle file ({type(e).__name__}: {e})",
                           "use another checkpoint, e.g. output/best_model/best_model.pdparams") from None


@dataclass
class Checkpoint:
    model: Dict[str, Any]
    optimizer: Optional[Dict[str, Any]]
    states: Dict[str, Any]
    ema: Optional[Dict[str, Any]]


def load_checkpoint(pdparams: str, need_optimizer: bool = False) -> Checkpoint:
    """Read a checkpoint set from its ``.pdparams`` path (the other files sit beside it)."""
    if not str(pdparams).endswith(".pdparams"):
        raise WeightsError(f"checkpoint path {pdparams} must be a .pdparams file",
                           "e.g. -o Train.resume_path=output/latest/latest.pdparams")
    stem = str(pdparams)[: -len(".pdparams")]
    model = _load(pdparams, "weights")
    opt = _load(stem + ".pdopt", "optimizer state") if need_optimizer else None
    has_states = need_optimizer or os.path.exists(stem + ".pdstates")  # resume needs it; plain weights may lack it
    states = _load(stem + ".pdstates", "training state") if has_states else {}
    ema = _load(stem + ".pdema", "EMA weights") if os.path.exists(stem + ".pdema") else None
    if not isinstance(model, dict):
        raise WeightsError(f"weights file {pdparams} does not hold a state dict", "pass a .pdparams file")
    return Checkpoint(model, opt, states, ema)


def fetch(path_or_url: str, key: str) -> str:
    """A local path for weights: the path itself, or a cached download of a URL.

    Args:
        key: the config key that named the weights (e.g. ``Train.pretrain_weight_path``), for error messages.
    """
    if not path_or_url.startswith(("http://", "https://")):
        if not os.path.isfile(path_or_url):
            raise WeightsError(f"{key}={path_or_url} does not exist",
                               f"give an existing .pdparams file or a URL (-o {key}=...)")
        return path_or_url
    target = os.path.join(CACHE_DIR, "weights", os.path.basename(path_or_url.split("?")[0]))
    if os.path.isfile(target):
        return target
    logger.info("downloading %s -> %s", path_or_url, target)
    try:
        with urllib.request.urlopen(path_or_url, timeout=DOWNLOAD_TIMEOUT) as resp, atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                shutil.copyfileobj(resp, f)
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise WeightsError(f"cannot download {key}={path_or_url}: {e}",
                           f"check the network, or download the file yourself and pass its path with -o {key}=..."
                           ) from None
    return target


def merge_weights(own: Dict[str, Any], loaded: Dict[str, Any], source: str) -> Dict[str, Any]:
    """``own`` (a model's state dict) with every tensor of ``loaded`` whose key and shape match it.

    Shape-mismatched keys (a classifier head for another number of classes) keep their fresh initialisation;
    missing and unexpected keys are reported.
    """
    mismatched = [k for k, v in loaded.items() if k in own and list(np.shape(v)) != list(np.shape(own[k]))]
    usable = {k: v for k, v in loaded.items() if k in own and k not in mismatched}
    missing = [k for k in own if k not in loaded]
    unexpected = [k for k in loaded if k not in own]
    if mismatched:
        logger.info("%s: re-initialised %d tensor(s) whose shape differs (classifier head for %s classes): %s",
                    source, len(mismatched), np.shape(own[mismatched[-1]])[-1], ", ".join(mismatched))
    if missing:
        logger.warning("%s: %d key(s) of the model are not in the weights (left initialised): %s", source,
                       len(missing), ", ".join(missing[:20]))
    if unexpected:
        logger.warning("%s: %d key(s) in the weights are not in the model (ignored): %s", source, len(unexpected),
                       ", ".join(unexpected[:20]))
    if not usable:
        raise WeightsError(f"{source} shares no tensor with the model", "check that the weights belong to "
                           "Global.model")
    return {**own, **usable}


def load_weights(model, state: Dict[str, Any], source: str) -> None:
    """Load a state dict into a Layer through ``merge_weights``."""
    model.set_state_dict(merge_weights(model.state_dict(), state, source))
