"""Checks that a file is usable weights: it loads as a state dict (without running code) and, when the caller says
which, holds the model's keys with the model's shapes. Used before a downloaded or cached file is trusted."""
from __future__ import annotations

from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import numpy as np

from ..errors import WeightsError
from .download import Verifier
from .safe_pickle import load_state_dict

Shapes = Mapping[str, Sequence[int]]
ExpectedShapes = Union[Shapes, Callable[[], Shapes]]
"""The model's ``{key: shape}``, or a callable giving it (called once, when a file is first checked)."""


def check_shapes(state: Dict[str, np.ndarray], expected: Shapes, path: str, what: str = "weights") -> None:
    """Raise WeightsError when ``state`` lacks a key of ``expected`` or holds it with another shape.

    Keys the model does not have are allowed: loading reports and ignores them.
    """
    missing = [k for k in expected if k not in state]
    differing = [k for k in expected if k in state and list(state[k].shape) != list(expected[k])]
    if not missing and not differing:
        return
    problems: List[str] = []
    if missing:
        more = ", ..." if len(missing) > 5 else ""
        problems.append(f"{len(missing)} key(s) missing ({', '.join(missing[:5])}{more})")
    if differing:
        shown = ", ".join(f"{k}: {list(state[k].shape)} instead of {list(expected[k])}" for k in differing[:3])
        problems.append(f"{len(differing)} shape(s) differ ({shown}{', ...' if len(differing) > 3 else ''})")
    raise WeightsError(f"{what} file {path} does not fit the model: {'; '.join(problems)}",
                       "check that the file holds the weights of this model")


def state_dict_verifier(expected: Optional[ExpectedShapes] = None, *, what: str = "weights") -> Verifier:
    """A ``verify`` callable for :func:`download`: the file must load as a state dict (and fit ``expected``).

    Example:
        >>> verify = state_dict_verifier({"fc.weight": [1280, 1000], "fc.bias": [1000]})
        >>> verify("PP-LCNet_x1_0_pretrained.pdparams")
    """
    resolved: List[Shapes] = []

    def verify(path: str) -> None:
        state = load_state_dict(path, what)
        if expected is None:
            return
        if not resolved:
            resolved.append(expected() if callable(expected) else expected)
        check_shapes(state, resolved[0], path, what)

    return verify
