"""Names of result files that never collide: ``<stem>_res.json`` / ``<stem>_res.<ext>`` per input.

The rule, applied to the inputs of one predict call in order (deterministic; compared without case, since some
file systems ignore it):

1. An input whose stem no other input has keeps it: ``cat.jpg`` -> ``cat_res.json`` (PaddleX's name).
2. Inputs that share a stem use their whole file name: ``a.jpg`` and ``a.png`` -> ``a.jpg_res.json`` and
   ``a.png_res.json``.
3. What is still taken (the same file name in two folders, several arrays) gets ``_2``, ``_3``... in input order:
   ``x/a.jpg`` -> ``a.jpg_res.json``, ``y/a.jpg`` -> ``a.jpg_2_res.json``.

Arrays and bytes are named ``array``.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import List, Optional

UNNAMED = "array"


def unique_stems(file_names: List[Optional[str]]) -> List[str]:
    """One unique result stem per input file name (None for arrays and bytes), in the same order."""
    stems = [os.path.splitext(n)[0] if n else UNNAMED for n in file_names]
    counts = Counter(s.casefold() for s in stems)
    names: List[Optional[str]] = [s if counts[s.casefold()] == 1 else None for s in stems]
    taken = {n.casefold() for n in names if n is not None}
    for i, name in enumerate(names):
        if name is not None:
            continue
        candidate = file_names[i] or UNNAMED
        unique, k = candidate, 2
        while unique.casefold() in taken:
            unique, k = f"{candidate}_{k}", k + 1
        taken.add(unique.casefold())
        names[i] = unique
    return [n for n in names if n is not None]
