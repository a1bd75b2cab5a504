"""Checkpoints (``<name>/<name>.pdparams .pdopt .pdstates [.pdema]``), resume, and pretrained weights.

Every file is read through :mod:`paddlex_cls.hub.safe_pickle` (data only: a pickle read by paddle.load can run
code), and the side files only where they are used. Downloads go through the hub's verified, URL-keyed cache.

A checkpoint folder is written whole into a hidden temp folder and then swapped in by renames, so ``latest/`` and
``best_model/`` always hold one complete, consistent set of files: a crash at any moment leaves the previous set
(or, in the instant between the two renames, that set under ``.<name>.old/``, which loading falls back to).
"""
from __future__ import annotations

import copyreg
import glob
import os
import pickle
import shutil
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

import numpy as np
import paddle
from paddle.base.framework import EagerParamBase

from ..errors import RuntimeFailure, WeightsError
from ..fileio import mark_owned, replace_dir
from ..hub import (
    cached_download,
    load_paddle_file,
    load_state_dict,
    official_model_name,
    official_weights,
    state_dict_verifier,
)
from ..log import logger
from .run_dir import checkpoint_legacy_names


def _check_finite(state: Dict[str, Any], what: str) -> None:
    for key, value in state.items():
        arr = np.asarray(value)
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            raise RuntimeFailure(f"refusing to save {what}: {key} holds NaN or inf values",
                                 "training diverged: lower Train.learning_rate or set Train.grad_clip (e.g. 5.0)")


def _tensor_reduce(tensor):
    # paddle.save's form of a tensor nested in a saved object (e.g. AMP master weights): a (name, array) tuple
    return tuple, ((tensor.name, tensor.numpy()),)


def write_state_file(obj: Any, path: str) -> None:
    """Write ``obj`` as ``paddle.save`` does for a dict of arrays: a protocol-4 pickle (``paddle.load``, PaddleX and
    :mod:`paddlex_cls.hub.safe_pickle` read it), tensor by tensor.

    The pickler runs without its memo (``fast``): with it, pickle keeps every object it wrote alive until the end,
    the bytes of every array included, so ``paddle.save`` held a second copy of the whole state (ResNet18: 45 MB
    more per file). Checkpoint objects are trees, which is all the memo-less pickler needs. :class:`LazyArray`
    values are copied out one at a time as they are written.
    """
    with open(path, "wb") as f:
        pickler = pickle.Pickler(f, protocol=4)
        pickler.fast = True  # no memo: see above
        pickler.dispatch_table = copyreg.dispatch_table.copy()
        for tensor_type in (paddle.Tensor, EagerParamBase):  # the table is looked up by exact type
            pickler.dispatch_table[tensor_type] = _tensor_reduce
        pickler.dump(obj)


def save_checkpoint(out_dir: str, name: str, model: Dict[str, Any], optimizer: Optional[Dict[str, Any]] = None,
                    states: Optional[Dict[str, Any]] = None, ema: Optional[Dict[str, Any]] = None) -> str:
    """Write ``<out_dir>/<name>/<name>.*`` (state dicts of numpy arrays or LazyArrays) atomically as a set;
    returns the folder.

    Non-finite weights are never saved; a folder named ``<name>`` that paddlex_cls did not write is never replaced;
    a failed write (disk full, interrupt) leaves the previous set and no partial folder behind.
    """
    _check_finite(model, f"{name} weights")
    if ema is not None:
        _check_finite(ema, f"{name} EMA weights")
    final = os.path.join(out_dir, name)
    tmp = os.path.join(out_dir, f".{name}.new")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        os.makedirs(tmp)
        prefix = os.path.join(tmp, name)
        write_state_file(model, prefix + ".pdparams")
        if optimizer is not None:
            write_state_file(optimizer, prefix + ".pdopt")
        if ema is not None:
            write_state_file(ema, prefix + ".pdema")
        write_state_file(dict(states or {}), prefix + ".pdstates")
        mark_owned(tmp)
        for fname in os.listdir(tmp):
            with open(os.path.join(tmp, fname), "rb") as f:
                os.fsync(f.fileno())
        replace_dir(tmp, final, legacy_names=checkpoint_legacy_names(name))
    except FileExistsError:
        raise RuntimeFailure(f"{final} exists and was not written by paddlex_cls; refusing to replace it",
                             "choose another -o Global.output (training never deletes folders it did not create)"
                             ) from None
    except OSError as e:
        raise RuntimeFailure(f"cannot write checkpoint {final}: {e.strerror or e}",
                             "free disk space or choose a writable -o Global.output") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _existing(path: str) -> Optional[str]:
    """``path``, or its copy in ``.<name>.old/`` (the instant between the two renames of save_checkpoint)."""
    if os.path.isfile(path):
        return path
    folder, fname = os.path.split(path)
    fallback = os.path.join(os.path.dirname(folder), f".{os.path.basename(folder)}.old", fname)
    return fallback if os.path.isfile(fallback) else None


_RESUME_EXAMPLE = "e.g. -o Train.resume_path=output/latest/latest.pdparams"


def _folder_error(path: str, key: str) -> Optional[WeightsError]:
    """For a folder named where a ``.pdparams`` file is expected: the error, naming the weights file inside it."""
    if not os.path.isdir(path):
        return None
    inside = sorted(glob.glob(os.path.join(glob.escape(path), "*.pdparams")))
    if inside:
        hint = f"name the weights file inside it: -o {key}={inside[0]}"
        if len(inside) > 1:
            hint += f" (or another of its {len(inside)} .pdparams files)"
    else:
        hint = f"name a .pdparams file, e.g. -o {key}=output/best_model/best_model.pdparams"
    return WeightsError(f"{key}={path} is a folder, not a weights file", hint)


def check_resume_path(path: str) -> None:
    """Fail fast (before the engine is built and tried) on a resume path that cannot be a checkpoint."""
    error = _folder_error(path, "Train.resume_path")
    if error is not None:
        raise error
    if not str(path).endswith(".pdparams"):
        raise WeightsError(f"Train.resume_path={path} must be a .pdparams file",
                           _RESUME_EXAMPLE)
    if _existing(path) is None:
        raise WeightsError(f"Train.resume_path={path} does not exist",
                           _RESUME_EXAMPLE)


def _load(path: str, what: str, loader: Callable[[str, str], Any] = load_paddle_file) -> Any:
    """Read a checkpoint file through the restricted unpickler (never paddle.load: a pickle can run code)."""
    found = _existing(path)
    if found is None:
        raise WeightsError(f"{what} file {path} does not exist", "check the path (a .pdparams file, e.g. "
                           "output/latest/latest.pdparams)")
    return loader(found, what)


def _load_dict(path: str, what: str) -> Dict[str, Any]:
    value = _load(path, what)
    if not isinstance(value, dict):
        raise WeightsError(f"{what} file {path} holds a {type(value).__name__}, not a dict",
                           "resume from a checkpoint written by training (latest/, epoch_N/ or best_model/)")
    return value


@dataclass
class Checkpoint:
    """A checkpoint read from its ``.pdparams``: the weights always, the side files only when asked for."""

    path: str
    model: Dict[str, np.ndarray]
    optimizer: Optional[Dict[str, Any]] = None
    states: Dict[str, Any] = field(default_factory=dict)
    ema: Optional[Dict[str, np.ndarray]] = None
    ema_path: Optional[str] = None

    def inference_state(self) -> Dict[str, np.ndarray]:
        """The weights to evaluate or export: the EMA weights when loaded (said in the log), else the model's."""
        if self.ema is None:
            return self.model
        logger.info("using EMA weights from %s instead of %s", self.ema_path, self.path)
        return self.ema


def load_checkpoint(pdparams: str, need_optimizer: bool = False, with_ema: bool = False) -> Checkpoint:
    """Read a checkpoint from its ``.pdparams`` path; every file goes through the restricted unpickler.

    Args:
        pdparams: the weights; the side files sit beside it.
        need_optimizer: resume: also read ``.pdopt`` and ``.pdstates`` (both required).
        with_ema: also read ``.pdema`` when it exists (evaluate, export, resume of an EMA run).
    """
    if not str(pdparams).endswith(".pdparams"):
        raise WeightsError(f"checkpoint path {pdparams} must be a .pdparams file",
                           _RESUME_EXAMPLE)
    stem = str(pdparams)[: -len(".pdparams")]
    ckpt = Checkpoint(str(pdparams), _load(pdparams, "weights", load_state_dict))
    if need_optimizer:
        ckpt.optimizer = _as_tensors(_load_dict(stem + ".pdopt", "optimizer state"))
        ckpt.states = _load_dict(stem + ".pdstates", "training state")
    if with_ema and _existing(stem + ".pdema"):
        ckpt.ema_path = stem + ".pdema"
        ckpt.ema = _load(ckpt.ema_path, "EMA weights", load_state_dict)
    return ckpt


def _as_tensors(state: Dict[str, Any]) -> Dict[str, Any]:
    """Optimizer entries as tensors, as paddle.load gives them: the optimizer keeps what it is given until its first
    step (state_dict() then returns it, e.g. when saved at once) and keeps AMP master weights as they are."""
    state = {k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in state.items()}
    if isinstance(state.get("master_weights"), dict):
        state["master_weights"] = {k: paddle.to_tensor(v) for k, v in state["master_weights"].items()}
    return state


def fetch(path_or_url: str, key: str) -> str:
    """A local path for weights: the path itself, or a verified download from the hub cache. Official weights URLs
    follow PADDLEX_CLS_MODEL_SOURCE (a mirror or a local folder).

    Args:
        key: the config key that named the weights (e.g. ``Train.pretrain_weight_path``), for error messages.
    """
    if not path_or_url.startswith(("http://", "https://")):
        if not os.path.isfile(path_or_url):
            raise _folder_error(path_or_url, key) or WeightsError(
                f"{key}={path_or_url} does not exist", f"give an existing .pdparams file or a URL (-o {key}=...)")
        return path_or_url
    model_name = official_model_name(path_or_url)
    if model_name is not None:
        return official_weights(model_name)
    return cached_download(path_or_url, verify=state_dict_verifier(), what="weights")


def merge_weights(own: Dict[str, Any], loaded: Dict[str, Any], source: str, head: Optional[str] = None,
                  allow_mismatch: bool = False) -> Dict[str, Any]:
    """``own`` (a model's state dict) with the tensors of ``loaded``, which must fit it.

    Only the classifier head (keys under ``head``; pretrained weights for another number of classes) may keep its
    fresh initialisation, and that is said once. Any other missing, unexpected or mis-shaped key is an error (the
    weights belong to another model) unless ``allow_mismatch``, which keeps those layers freshly initialised too.

    Raises:
        WeightsError: the weights do not fit (exit 5); the message names the first few keys.
    """
    in_head = (lambda k: k.startswith(head + ".")) if head else (lambda k: False)
    mismatched = [k for k, v in loaded.items() if k in own and list(np.shape(v)) != list(np.shape(own[k]))]
    missing = [k for k in own if k not in loaded]
    unexpected = [k for k in loaded if k not in own]
    usable = {k: v for k, v in loaded.items() if k in own and k not in mismatched}
    head_keys = [k for k in mismatched + missing if in_head(k)]
    foreign = [k for k in mismatched + missing + unexpected if not in_head(k)]
    if foreign and not allow_mismatch:
        raise WeightsError(f"{source} does not fit this model: {len(foreign)} key(s) outside the classifier head are "
                           f"missing, extra or mis-shaped (e.g. {', '.join(foreign[:4])})",
                           "check that the weights belong to Global.model; to start those layers from scratch "
                           "anyway, set -o Train.pretrain_allow_mismatch=true")
    if not usable:
        raise WeightsError(f"{source} shares no tensor with the model", "check that the weights belong to "
                           "Global.model")
    if head_keys:
        logger.info("%s: re-initialised %d tensor(s) of the classifier head for %s classes (the weights have "
                    "another class count): %s", source, len(head_keys), np.shape(own[head_keys[-1]])[-1],
                    ", ".join(head_keys))
    if foreign:
        logger.warning("%s: %d key(s) outside the classifier head keep their fresh initialisation "
                       "(Train.pretrain_allow_mismatch): %s", source, len(foreign), ", ".join(foreign[:20]))
    return {**own, **usable}


def load_weights(model, state: Dict[str, Any], source: str) -> None:
    """Load weights into a Layer for evaluation or export: every key must fit, the head included (a random head
    must never be evaluated or exported)."""
    model.set_state_dict(merge_weights(model.state_dict(), state, source))
