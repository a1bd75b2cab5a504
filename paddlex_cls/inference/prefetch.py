"""Reading and preprocessing images on a small thread pool while the backend runs the previous batch.

OpenCV's decode and resize and numpy's normalisation release the GIL, so a few threads keep a folder of images
inference-bound. Results come back in input order; at most ``window`` images are read ahead (bounded memory).
"""
from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Deque, Iterator, List, Optional, Tuple, TypeVar

from ..errors import PaddlexClsError

_DONE = object()
S = TypeVar("S")
T = TypeVar("T")


def _attempt(prepare: Callable[[S], T], item: S) -> Tuple[Optional[T], Optional[PaddlexClsError]]:
    try:
        return prepare(item), None
    except PaddlexClsError as e:  # a user error belongs to this item; the caller decides to skip or stop
        return None, e


def prefetched(items: List[S], prepare: Callable[[S], T], workers: int,
               window: int) -> Iterator[Tuple[S, Optional[T], Optional[PaddlexClsError]]]:
    """Yield ``(item, prepare(item), None)`` or ``(item, None, error)`` in order, ``workers`` items at a time.

    With one item (or one worker) everything runs inline: no thread hand-off for single-image calls.
    """
    if len(items) <= 1 or workers <= 1:
        for item in items:
            yield (item, *_attempt(prepare, item))
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="paddlex_cls-read")
    pending: Deque[Tuple[S, Future]] = deque()
    todo = iter(items)
    try:
        for item in todo:
            pending.append((item, pool.submit(_attempt, prepare, item)))
            if len(pending) >= window:
                break
        while pending:
            item, future = pending.popleft()
            nxt = next(todo, _DONE)
            if nxt is not _DONE:
                pending.append((nxt, pool.submit(_attempt, prepare, nxt)))
            yield (item, *future.result())
    finally:  # also when the consumer stops early: drop what was not started, wait for what was
        pool.shutdown(wait=True, cancel_futures=True)
