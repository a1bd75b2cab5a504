"""Reference state-dict layouts of the official weights (copied from shared/ref_models.json.gz into tests/data)."""
from __future__ import annotations

import functools
import gzip
import json
from pathlib import Path

DATA = Path(__file__).parent / "data" / "ref_state_dicts.json.gz"


@functools.lru_cache(maxsize=1)
def reference() -> dict:
    """{model name: {keys: [[key, shape, dtype], ...], params_all, params_trainable, input_size, rep}}."""
    with gzip.open(DATA, "rt") as f:
        return json.load(f)


def small_input_size(entry) -> int:
    """Smallest cheap input the architecture takes: 32, raised to its minimum and rounded to its multiple."""
    pre = entry.preprocess
    if pre.fixed_size:
        return pre.input_size
    size = max(32, pre.min_size)
    mult = pre.size_multiple
    return -(-size // mult) * mult


def smallest_per_family() -> list:
    """The registered model with the fewest parameters in each family (for the costlier per-family tests)."""
    from paddlex_cls.models import get_entry, list_models

    best: dict = {}
    for name in list_models():
        fam = get_entry(name).family
        if fam not in best or reference()[name]["params_all"] < reference()[best[fam]]["params_all"]:
            best[fam] = name
    return sorted(best.values())
