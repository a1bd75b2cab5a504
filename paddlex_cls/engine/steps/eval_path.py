"""Which way an engine evaluates during training, decided by timing whole evaluations.

Each engine has a way with no set-up (the dygraph Layer; the static engine's evaluation program run by its executor)
and the ``paddle.inference`` predictor with oneDNN's fusions, served from a forked child (``fast_eval``): several
times faster per batch at 224 px, but it costs a second or two to set up at every evaluation (the weights change
every epoch), so on a small validation set or at 32 px the first way is faster (ResNet18, 359 images at 32 px:
dygraph 1.0 s, predictor 1.8 s set-up + 0.2 s; 128 images at 224 px: dygraph 8.2 s, predictor 2.0 + 3.3 s). The first
two evaluations of a run take one way each, set-up included; the faster one is kept and logged once. Both give the
same logits within rounding (tests), so the metrics do not depend on the choice.
"""
from __future__ import annotations

import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...errors import first_line
from ...log import logger

Forward = Callable[[np.ndarray], np.ndarray]


class FasterEvalPath:
    """Settles on the faster way to evaluate after timing one whole evaluation with each.

    The ways are passed at every call (not kept), so an engine holding this object is not in a reference cycle
    with it: a closed engine's tensors go when its last reference does, not at the next garbage collection.

    Example:
        >>> paths = FasterEvalPath()
        >>> ways = [("dygraph Layer", lambda: layer_forward(model)), ("oneDNN predictor", build_predictor)]
        >>> metrics = evaluate(paths.forward(ways), loader, num_classes)  # once per evaluation
    """

    def __init__(self) -> None:
        self._seconds: Dict[str, List[float]] = {}  # name -> [seconds of its evaluation], filled while it runs
        self._dropped: List[str] = []
        self.chosen: Optional[str] = None

    def forward(self, ways: Sequence[Tuple[str, Callable[[], Forward]]]) -> Forward:
        """A forward for one evaluation, timed.

        Args:
            ways: (name, build) pairs, the first without set-up cost; ``build()`` returns a forward for the
                current weights. A way whose build raises is dropped with a warning (the first one's error is
                raised: it is the fallback).
        """
        order = [name for name, _ in ways if name not in self._dropped]
        name = self._pick(order)
        tic = time.perf_counter()
        try:
            forward = dict(ways)[name]()
        except Exception as e:  # noqa: B902 -- any failure of an optional way: keep evaluating another way
            if name == order[0]:
                raise
            logger.warning("evaluating without the %s: it failed to set up (%s: %s)", name, type(e).__name__,
                           first_line(e))
            self._dropped.append(name)
            return self.forward(ways)
        spent = self._seconds.setdefault(name, [0.0])
        spent[0] += time.perf_counter() - tic

        def timed(batch: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            out = forward(batch)
            spent[0] += time.perf_counter() - start
            return out

        return timed

    def _pick(self, order: List[str]) -> str:
        if self.chosen in order:
            return self.chosen
        if len(order) == 1:  # nothing to choose from (GPU, several processes, or the other way failed)
            self.chosen = order[0]
            return self.chosen
        untried = [n for n in order if n not in self._seconds]
        if untried:
            return untried[0]
        times = {n: self._seconds[n][0] for n in order}
        self.chosen = min(order, key=times.__getitem__)
        logger.info("evaluating with the %s from now on (one evaluation each: %s)", self.chosen,
                    ", ".join(f"{n} {times[n]:.1f} s" for n in order))
        return self.chosen
