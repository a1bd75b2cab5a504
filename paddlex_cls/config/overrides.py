"""Parsing ``-o KEY=VALUE`` overrides: data only, never evaluated as code.

PaddleX types override values with ``eval`` (so ``on`` becomes None, a value may not contain ``=``, list-index keys
break). Here a value stays its raw text until the schema says what type the key has (``values.coerce``); keys not
in the schema (list items of free-form values) are typed as YAML scalars / flow collections.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, List, Tuple

from ..errors import ConfigError

_KEY_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$|^\d+$")


@dataclass(frozen=True)
class Override:
    """One override: the dotted key split into parts, and the value's raw text."""

    path: Tuple[str, ...]
    raw: str

    @property
    def key(self) -> str:
        return ".".join(self.path)


def join_tokens(tokens: Iterable[str]) -> List[str]:
    """Re-join ``KEY = VALUE`` written with spaces (the shell splits it into 2-3 tokens) into ``KEY=VALUE``."""
    out: List[str] = []
    pending_value = False  # the last item ends with '=' and still waits for its value
    for tok in tokens:
        if tok == "=" and out and "=" not in out[-1]:
            out[-1] += "="
            pending_value = True
        elif tok.startswith("=") and out and "=" not in out[-1]:
            out[-1] += tok
            pending_value = tok == "="
        elif pending_value and "=" not in tok:
            out[-1] += tok
            pending_value = False
        else:
            out.append(tok)
            pending_value = tok.endswith("=") and tok.count("=") == 1
    return out


def parse_override(text: str) -> Override:
    """Parse ``A.b.0.c=value``: split on the FIRST ``=``; the key must be dotted names or list indices."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} has no '='",
                          "write overrides as -o Section.key=value, e.g. -o Global.mode=train")
    key, raw = text.split("=", 1)
    key = key.strip()
    parts = tuple(key.split("."))
    if not key or not all(_KEY_PART.match(p) for p in parts):
        raise ConfigError(f"override {text!r}: {key!r} is not a dotted key",
                          "keys are dotted names with optional list indices, e.g. -o Train.epochs_iters=10")
    return Override(parts, raw.strip())


def parse_overrides(tokens: Iterable[str]) -> List[Override]:
    """Parse every ``-o`` token (a later override of the same key wins when applied in order)."""
    return [parse_override(t) for t in join_tokens(tokens)]
