"""Checking every distinct listed image: that it is a regular file, then its header (default) or a full decode
(``CheckDataset.verify_images=full``), in worker processes once a dataset has enough images.

Reading a header through Pillow costs about 75 us for a 32 px PNG, five times the read itself, and was most of
check_dataset's time on large datasets. PNG and JPEG headers (nearly every dataset) are therefore read from the
file's first bytes by ``preprocess/image_header.py``. Any other format, and anything these readers do not fully
understand, goes to Pillow through ``image_io.checked_size``, the decoder's own header check, which decides. Full
decodes are ``image_io.load_image``, the decode training uses. Files are stat-ed before they are opened: a FIFO
listed as an image would block a reader.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import List, Optional, Tuple

from ..data.annotations import file_problem
from ..errors import RuntimeFailure
from ..log import logger
from ..preprocess.image_io import ImageDecodeError, checked_size, load_image

Found = List[Tuple[int, str]]  # (image index in the PathTable, why it is unusable)
HEAD_BYTES = 65536  # enough for the headers of nearly all files; a longer JPEG header goes to image_io
PARALLEL_MIN = 2048  # fewer images are checked in this process: starting workers would cost more than it saves
CHUNK = {False: 2048, True: 128}  # images per task for header reads / full decodes
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)


def _header_size(path: str) -> Tuple[int, int]:
    fd = os.open(path, _OPEN_FLAGS)
    try:
        head = os.read(fd, HEAD_BYTES)
    finally:
        os.close(fd)
    return checked_size(head, path)


def image_problem(path: str, full: bool = False) -> Optional[str]:
    """Why the image at ``path`` is unusable, or None when it is fine."""
    why = file_problem(path)
    if why:
        return why
    try:
        if full:
            load_image(path)
        else:
            _header_size(path)
    except ImageDecodeError as e:  # the decoder's message may hold the whole path: the problem names it already
        return f"is not a readable image ({str(e).replace(path, os.path.basename(path))})"
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    return None


def check_chunk(start: int, paths: List[str], full: bool) -> Found:
    """Problems of ``paths`` (indexes ``start``, ``start + 1``, ...)."""
    return [(start + k, why) for k, path in enumerate(paths) if (why := image_problem(path, full))]


def _worker_start() -> None:
    # Ctrl-C is the parent's to handle (it stops the pool); a worker must not print its own traceback, nor outlive
    # check_dataset when that is killed (Linux: the kernel signals the orphan).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG


class ImageChecker:
    """Checks images as ``PathTable`` hands them over: in this process for small datasets, else in workers.

    Workers are forked at the first large batch, while the lists are still being read, so they start small and
    check headers in parallel with the parsing.

    Args:
        full: decode every image instead of reading its header.
        workers: worker processes; None = all cores; 1 = check everything in this process.
    """

    def __init__(self, full: bool = False, workers: Optional[int] = None) -> None:
        self.full = full
        self.workers = workers or os.cpu_count() or 1
        self.count = 0
        self._found: Found = []
        self._pool: Optional[ProcessPoolExecutor] = None
        self._futures: List[Future] = []
        self._t0 = time.perf_counter()

    @property
    def parallel(self) -> bool:
        """Whether worker processes were used."""
        return self._pool is not None

    def __call__(self, start: int, paths: List[str]) -> None:
        self.count += len(paths)
        if self._pool is None and (self.workers < 2 or len(paths) < PARALLEL_MIN):
            self._found += check_chunk(start, paths, self.full)
            return
        if self._pool is None:
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else None)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_worker_start)
        step = CHUNK[self.full]
        for k in range(0, len(paths), step):
            self._futures.append(self._pool.submit(check_chunk, start + k, paths[k:k + step], self.full))

    def __enter__(self) -> "ImageChecker":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:  # also when reading the lists failed: no worker may be left behind
            self._pool.shutdown(cancel_futures=True)

    def results(self) -> Found:
        """Every problem found, once all checks have finished."""
        try:
            for future in self._futures:
                self._found += future.result()
        except BrokenProcessPool:
            raise RuntimeFailure("a worker process died while checking images (out of memory, or a decoder crashed "
                                 "on a file)", "run again with -o CheckDataset.num_workers=1 to see which image it "
                                 "is") from None
        self._futures = []
        how = f"{self.workers} worker processes" if self.parallel else "1 process"
        logger.info("checked %d distinct images (%s) with %s in %.2f s", self.count,
                    "full decode" if self.full else "headers", how, time.perf_counter() - self._t0)
        return self._found
