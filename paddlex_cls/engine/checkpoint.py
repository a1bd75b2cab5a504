"""Checkpoints (``<name>/<name>.pdparams .pdopt .pdstates [.pdema]``), resume, and pretrained weights.

A checkpoint folder is written whole into a hidden temp folder and then swapped in by renames, so ``latest/`` and
``best_model/`` always hold one complete, consistent set of files: a crash at any moment leaves the previous set
(or, in the instant between the two renames, that set under ``.<name>.old/``, which loading falls back to).
"""
from __future__ import annotations

import logging
import os
import pickle
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np
import paddle

from ..errors import WeightsError
from ..fileio import atomic_path

logger = logging.getLogger("paddlex_cls")
CACHE_DIR = os.environ.get("PADDLEX_CLS_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "paddlex_cls"))
DOWNLOAD_TIMEOUT = 30


def save_checkpoint(out_dir: str, name: str, model, optimizer=None, states: Optional[Dict[str, Any]] = None,
                    ema=None) -> str:
    """Write ``<out_dir>/<name>/<name>.*`` atomically as a set; returns the folder."""
    final = os.path.join(out_dir, name)
    tmp = os.path.join(out_dir, f".{name}.new")
    old = os.path.join(out_dir, f".{name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    prefix = os.path.join(tmp, name)
    paddle.save(model.state_dict(), prefix + ".pdparams")
    if optimizer is not None:
        paddle.save(optimizer.state_dict(), prefix + ".pdopt")
    if ema is not None:
        paddle.save(ema.state_dict(), prefix + ".pdema")
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


def fetch(path_or_url: str) -> str:
    """A local path for weights: the path itself, or a cached download of a URL."""
    if not path_or_url.startswith(("http://", "https://")):
        if not os.path.isfile(path_or_url):
            raise WeightsError(f"Train.pretrain_weight_path {path_or_url} does not exist",
                               "give an existing .pdparams file, a URL, or -o Train.pretrain_weight_path=null to "
                               "train from scratch")
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
        raise WeightsError(f"cannot download pretrained weights {path_or_url}: {e}",
                           "check the network, download the file yourself and pass its path, or train from scratch "
                           "with -o Train.pretrain_weight_path=null") from None
    return target


def load_weights(model, state: Dict[str, Any], source: str) -> Dict[str, List[str]]:
    """Load a state dict into ``model``; shape-mismatched keys (a classifier head for another number of classes)
    keep their fresh initialisation. Returns {"reinitialised", "missing", "unexpected"} key lists, all reported."""
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if k in own and list(np.shape(v)) != list(own[k].shape)]
    usable = {k: v for k, v in state.items() if k in own and k not in mismatched}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    model.set_state_dict(usable)
    if mismatched:
        logger.info("%s: re-initialised %d tensor(s) whose shape differs (classifier head for %s classes): %s",
                    source, len(mismatched), own[mismatched[-1]].shape[-1], ", ".join(mismatched))
    if missing:
        logger.warning("%s: %d key(s) of the model are not in the weights (left initialised): %s", source,
                       len(missing), ", ".join(missing[:20]))
    if unexpected:
        logger.warning("%s: %d key(s) in the weights are not in the model (ignored): %s", source, len(unexpected),
                       ", ".join(unexpected[:20]))
    if not usable:
        raise WeightsError(f"{source} shares no tensor with the model", "check that the weights belong to "
                           "Global.model")
    return {"reinitialised": mismatched, "missing": missing, "unexpected": unexpected}
