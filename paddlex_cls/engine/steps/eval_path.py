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

from ...log import logger

Forward = Callable[[np.ndarray], np.ndarray]


class FasterEvalPath:
    """Hands out evaluation forwards, each evaluation timed, and settles on the faster way after trying each once.

    Args:
        ways: (name, build) pairs, the first without set-up cost; ``build()`` returns a forward for the current
            weights. A way whose build raises is dropped with a warning.

    Example:
        >>> paths = FasterEvalPath([("dygraph", lambda: layer_forward(model)), ("predictor", build_predictor)])
        >>> metrics = evaluate(paths.forward(), loader, num_classes)  # once per evaluation
    """

    def __init__(self, ways: Sequence[Tuple[str, Callable[[], Forward]]]):
        self._ways: Dict[str, Callable[[], Forward]] = dict(ways)
        self._order: List[str] = [name for name, _ in ways]
        self._seconds: Dict[str, List[float]] = {}  # name -> [seconds of its evaluation], filled while it runs
        self.chosen: Optional[str] = None if len(ways) > 1 else self._order[0]

    def forward(self) -> Forward:
        """A forward for one evaluation; call it again for the next evaluation (the weights may have changed)."""
        name = self.chosen or self._next_to_try()
        tic = time.perf_counter()
        try:
            forward = self._ways[name]()
        except Exception as e:  # noqa: B902 -- any failure of the optional way: keep evaluating the other way
            if name == self._order[0]:
                raise
            first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            logger.warning("evaluating without the %s: it failed to set up (%s: %s)", name, type(e).__name__,
                           first_line)
            del self._ways[name]
            self._order.remove(name)
            self.chosen = self._order[0]
            return self.forward()
        spent = self._seconds.setdefault(name, [0.0])
        spent[0] += time.perf_counter() - tic

        def timed(batch: np.ndarray) -> np.ndarray:
            start = time.perf_counter()
            out = forward(batch)
            spent[0] += time.perf_counter() - start
            return out

        return timed

    def _next_to_try(self) -> str:
        untried = [n for n in self._order if n not in self._seconds]
        if untried:
            return untried[0]
        times = {n: self._seconds[n][0] for n in self._order}
        self.chosen = min(self._order, key=times.__getitem__)
        logger.info("evaluating with the %s from now on (one evaluation each: %s)", self.chosen,
                    ", ".join(f"{n} {times[n]:.1f} s" for n in self._order))
        return self.chosen
