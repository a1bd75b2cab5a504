"""Inference on one thread: requests that wait together run as one batch, one batch at a time.

One thread owns the predictor, so the math library's threads never compete with a second inference for the cores
(and oneDNN's per-thread caches stay warm). A batch is whatever is waiting when the previous one ends, up to
``max_batch``: nothing waits for a batch to fill, so a lone request runs at once and a busy service batches more.
"""
from __future__ import annotations

import asyncio
import queue
import threading
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from ..log import logger

RunBatch = Callable[[np.ndarray], np.ndarray]
_Item = Tuple[np.ndarray, asyncio.Future, asyncio.AbstractEventLoop]


def _resolve(fut: asyncio.Future, value: object, failed: bool) -> None:
    if fut.done():  # the request was cancelled meanwhile
        return
    if failed:
        fut.set_exception(value)  # type: ignore[arg-type]
    else:
        fut.set_result(value)


class InferenceBatcher:
    """Runs ``run_batch`` on a thread of its own over the inputs that ``infer`` hands it.

    Args:
        run_batch: NCHW float32 -> probabilities [N, C].
        max_batch: most inputs in one run.
        warmup_shapes: CHW shapes to run once at every batch size up to ``max_batch`` before serving: oneDNN builds
            its kernels per input shape, which would otherwise slow the first batches of each size.
    """

    def __init__(self, run_batch: RunBatch, max_batch: int, warmup_shapes: Sequence[Tuple[int, ...]] = ()) -> None:
        self._run_batch = run_batch
        self._max_batch = max_batch
        self._queue: "queue.SimpleQueue[Optional[_Item]]" = queue.SimpleQueue()
        self._ready = threading.Event()
        self._warmup_shapes = list(warmup_shapes)
        self._held: Optional[_Item] = None
        self._thread = threading.Thread(target=self._work, name="paddlex_cls-inference", daemon=True)
        self._thread.start()

    def wait_ready(self) -> None:
        """Block until the warm-up runs are done (any error there shows on the first request)."""
        self._ready.wait()

    async def infer(self, chw: np.ndarray) -> np.ndarray:
        """The class probabilities [C] of one preprocessed image."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        self._queue.put((chw, fut, loop))
        return await fut

    def close(self) -> None:
        """Finish what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def _warm_up(self) -> None:
        try:
            for shape in self._warmup_shapes:
                for n in range(1, self._max_batch + 1):
                    self._run_batch(np.zeros((n, *shape), np.float32))
        except Exception:  # the same failure will answer the first request; the log keeps its traceback
            logger.exception("inference warm-up failed")
        finally:
            self._ready.set()

    def _next_batch(self) -> Tuple[List[_Item], bool]:
        """The waiting items of one input shape (at least one, blocking for it) and whether the stop sign came.

        An item of another shape (an export without a fixed crop) is held over for the next batch.
        """
        first, self._held = (self._held, None) if self._held is not None else (self._queue.get(), None)
        if first is None:
            return [], True
        items = [first]
        while len(items) < self._max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return items, True
            if item[0].shape != first[0].shape:
                self._held = item
                break
            items.append(item)
        return items, False

    def _work(self) -> None:
        self._warm_up()
        stop = False
        while not stop:
            items, stop = self._next_batch()
            if not items:
                continue
            try:
                probs = self._run_batch(np.stack([chw for chw, _, _ in items]))
                if len(probs) != len(items):  # would leave requests waiting forever
                    raise RuntimeError(f"the predictor returned {len(probs)} rows for {len(items)} images")
                outcomes = [(row, False) for row in probs]
            except Exception as e:  # every request of the batch gets the failure; the service stays up
                outcomes = [(e, True)] * len(items)
            for (_, fut, loop), (value, failed) in zip(items, outcomes):
                loop.call_soon_threadsafe(_resolve, fut, value, failed)
