"""Restricted loading of Paddle weight files (``.pdparams .pdopt .pdstates .pdema``): data only, never code.

``paddle.save`` writes these files as pickles (protocol 2-4). A pickle may name any importable callable and call it
while loading (``os.system`` via ``__reduce__``), so ``paddle.load`` of a downloaded or shared file runs whatever the
file asks. The unpickler here resolves only the few globals that ``paddle.save`` really writes and refuses any other
one before it is imported or called. What Paddle 3.3 writes:

- a state dict (a model's, an EMA's, an optimizer's; every value a tensor, or a dict of plain values such as the
  ``LR_Scheduler`` state): a plain dict of numpy arrays plus the name table ``"StructuredToParameterName@@"``
  (``{key: tensor name}``); with protocol 2/3, tensors over 1 GiB are split into ``"<key>@@.<i>"`` parts listed under
  ``"UnpackBigParamInfor@@"``. Arrays pickle as ``numpy.core.multiarray._reconstruct`` (``numpy._core`` under
  numpy 2), ``numpy.ndarray`` and ``numpy.dtype``; protocol 2 adds ``_codecs.encode`` for the raw bytes.
- any other object (e.g. ``.pdstates``, or an optimizer state with ``master_weights``): plain pickle of dicts,
  lists, sets, numbers and strings; numpy scalars as ``numpy.core.multiarray.scalar``; a tensor as
  ``builtins.tuple((name, ndarray))``; nested ``Layer.state_dict()`` results as ``collections.OrderedDict``.

The result equals ``paddle.load(path, return_numpy=True)``: numpy arrays, name table removed, split tensors joined,
``(name, ndarray)`` tensor tuples replaced by their arrays.
"""
from __future__ import annotations

import codecs
import os
import pickle
from collections import OrderedDict
from typing import Any, Dict, Tuple

import numpy as np

from ..errors import WeightsError

NAME_TABLE_KEY = "StructuredToParameterName@@"
SPLIT_TENSORS_KEY = "UnpackBigParamInfor@@"  # sic: Paddle's spelling


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """Stands in for ``_codecs.encode``: protocol-2 pickles store bytes as ``encode(latin-1 text, 'latin1')``."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode is only allowed on text with latin1, got {encoding!r}")
    return text.encode("latin1")


# Resolved from objects, not module paths: numpy 2 moved numpy.core to numpy._core, and files hold either name.
_RECONSTRUCT = np.ndarray(0).__reduce__()[0]
_SCALAR = np.float32(0).__reduce__()[0]
_ALLOWED: Dict[Tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("builtins", "tuple"): tuple,
    ("__builtin__", "tuple"): tuple,  # protocol 2 writes Python 2 module names
    ("builtins", "set"): set,  # protocol 2/3 (4 has set opcodes)
    ("__builtin__", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("__builtin__", "frozenset"): frozenset,
    ("builtins", "bytes"): bytes,
    ("__builtin__", "bytes"): bytes,
    ("_codecs", "encode"): _latin1_encode,
    ("collections", "OrderedDict"): OrderedDict,
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allow-list."""

    def __init__(self, qualname: str) -> None:
        super().__init__(qualname)
        self.qualname = qualname


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"{module}.{name}") from None


# A corrupt pickle fails in many ways: bad opcodes, wrong argument types to numpy, unhashable keys, deep nesting.
_CORRUPT = (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, RecursionError, MemoryError)


def load_paddle_file(path: str, what: str = "weights") -> Any:
    """Load a file written by ``paddle.save`` without running code from it.

    Args:
        path: a ``.pdparams``, ``.pdopt``, ``.pdstates`` or ``.pdema`` file.
        what: what the file holds, for messages (e.g. "weights", "optimizer state").

    Returns:
        What ``paddle.load(path, return_numpy=True)`` returns: dicts, lists and plain values with numpy arrays.

    Raises:
        WeightsError: the file is missing, unreadable, truncated, corrupt, or asks to build anything but data.

    Example:
        >>> state = load_paddle_file("output/best_model/best_model.pdparams")
    """
    try:
        with open(path, "rb") as f:
            obj = _RestrictedUnpickler(f, encoding="latin1").load()  # latin1: Python 2 pickles keep bytes as str
        return _as_paddle_loads(obj)
    except _ForbiddenGlobal as e:
        raise WeightsError(f"{what} file {path} wants to build {e.qualname}, which a weights file never holds; it may "
                           "be malicious and was not loaded", "delete it and use weights from a source you trust "
                           "(weight files hold only numpy arrays and plain Python values)") from None
    except FileNotFoundError:
        raise WeightsError(f"{what} file {path} does not exist", "check the path") from None
    except OSError as e:
        raise WeightsError(f"cannot read {what} file {path}: {e.strerror or e}", "check the file's permissions "
                           "and the disk") from None
    except _CORRUPT as e:
        raise WeightsError(_corruption_message(path, what, e), "download or copy the file again, or use another "
                           "checkpoint") from None


def _corruption_message(path: str, what: str, error: BaseException) -> str:
    if isinstance(error, EOFError) or "truncated" in str(error):
        size = os.path.getsize(path) if os.path.exists(path) else 0
        return f"{what} file {path} is truncated ({size} bytes; an interrupted download or copy?)"
    return f"{what} file {path} is corrupt or not a Paddle file ({type(error).__name__}: {error})"


def load_state_dict(path: str, what: str = "weights") -> Dict[str, np.ndarray]:
    """Load a ``.pdparams``/``.pdema`` file and check that it is a state dict: text keys, array values.

    Raises:
        WeightsError: as :func:`load_paddle_file`, or the file holds something other than a state dict.
    """
    state = load_paddle_file(path, what)
    if not isinstance(state, dict):
        raise WeightsError(f"{what} file {path} holds a {type(state).__name__}, not a state dict",
                           "pass a .pdparams file written by paddle.save(model.state_dict(), path)")
    bad = [k for k, v in state.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise WeightsError(f"{what} file {path} is not a state dict: {len(bad)} entr(y/ies) are not "
                           f"name -> array, e.g. {bad[0]!r}", "pass a .pdparams file of model weights")
    return state


def _as_paddle_loads(obj: Any) -> Any:
    """Reshape a raw unpickled object the way paddle.load(return_numpy=True) does."""
    if isinstance(obj, dict):
        obj = _join_split_tensors(obj)
        if NAME_TABLE_KEY in obj:
            del obj[NAME_TABLE_KEY]
            return obj
    return _arrays_for_tensor_tuples(obj)


def _join_split_tensors(state: Dict[Any, Any]) -> Dict[Any, Any]:
    """Join the parts of tensors that protocol 2/3 split at 1 GiB (Paddle's ``_pack_loaded_dict``)."""
    split = state.pop(SPLIT_TENSORS_KEY, None)
    if split is None:
        return state
    if not isinstance(split, dict):
        raise ValueError(f"{SPLIT_TENSORS_KEY} is a {type(split).__name__}, not a dict")
    for key, info in split.items():
        parts = [state.pop(name) for name in info["slices"]]
        state[key] = np.concatenate(parts).reshape(info["OriginShape"])
    return state


def _is_tensor_tuple(obj: Any) -> bool:
    """Paddle pickles a tensor outside a state dict as ``(name, ndarray)``."""
    return type(obj) is tuple and len(obj) == 2 and isinstance(obj[0], str) and isinstance(obj[1], np.ndarray)


def _arrays_for_tensor_tuples(obj: Any) -> Any:
    if _is_tensor_tuple(obj):
        return obj[1]
    if isinstance(obj, dict):
        for key, value in obj.items():
            obj[key] = _arrays_for_tensor_tuples(value)
        return obj
    if isinstance(obj, list):
        return [_arrays_for_tensor_tuples(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_arrays_for_tensor_tuples(v) for v in obj)
    return obj
