"""Work done in a forked child process: a function's result (the engine trial, ``choose.py``), or an array function
served batch by batch (the static engine's evaluation predictor, ``fast_eval.program_forward``).

The trial builds a static engine and a dygraph engine only to compare them. Paddle 3.3 does not give back the memory
a static engine's oneDNN kernels allocated once it is closed (its reordered weights and gradients: ResNet18 kept
about 650 MB in use per closed engine at 224 px, batch 16, 100 MB at 32 px; not in Paddle's allocator, not in its
oneDNN blob cache, which can be emptied without freeing any of it), so a run that the trial sends to dygraph carried
the losing engine's memory to its end (docs/training.md, Memory: 2314 MB against 679 MB after the first step). A
child process returns it all when it exits. It also keeps a kernel that crashes (a segfault in a static program) from
taking the run down with it.

The evaluation predictor is served from a child for a related reason: each ``paddle.inference`` predictor built and
destroyed in a process that trains a static engine leaves that engine's kernels to allocate their oneDNN memory
anew, and the old copies are never freed (ResNet18 at 32 px: about 90 MB more in use after every evaluation, without
bound over the epochs; a predictor kept alive does not do it). Its inputs cross shared memory and its outputs the
pipe as raw bytes: nothing is unpickled.
"""
from __future__ import annotations

import copy
import gc
import mmap
import multiprocessing
import os
import signal
import sys
import weakref
from multiprocessing import reduction
from typing import Callable, Optional, Tuple, TypeVar

import numpy as np

T = TypeVar("T")


class ChildDied(RuntimeError):
    """The child ended without answering (killed by a signal, out of memory, or exited)."""


class ChildTimedOut(ChildDied):
    """The child did not answer in time and was ended."""


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def run_forked(fn: Callable[[], T], timeout: Optional[float] = None) -> T:
    """``fn()`` in a forked child: its (picklable) return value, or the exception it raised, raised here.

    The child shares nothing with the parent after the fork: what ``fn`` changes there (engines, caches, seeds)
    is gone when it returns. If the parent is interrupted while it waits (Ctrl-C, SIGTERM), the child is ended too.

    Args:
        timeout: seconds to wait for the answer; the child is then ended (None: no limit).

    Raises:
        ChildDied: the child died without an answer (its exit code or signal in the message), or did not answer
            within ``timeout``.
    """
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    # not a daemon: a daemonic process may not start processes of its own, and the trial's evaluation check does
    # (fast_eval.program_forward); the child is ended below whatever happens
    child = context.Process(target=_answer, args=(fn, send))
    child.start()
    send.close()
    try:
        if not receive.poll(timeout):
            raise ChildTimedOut(f"no answer within {timeout:.0f} s")
        try:
            kind, value = receive.recv()
        except EOFError:
            child.join()
            raise ChildDied(_how_it_ended(child.exitcode)) from None
        child.join()
    finally:
        receive.close()
        if child.is_alive():
            child.terminate()
            child.join()
    if kind == "raised":
        raise value
    return value


def _answer(fn: Callable[[], T], send) -> None:
    # The child has copies of the parent's objects but not its threads: a Paddle executor the parent dropped and
    # had not yet collected, destroyed here, waits for a garbage-collector thread that exists only in the parent
    # (seen: the child hung in ~PirInterpreter). So the child never collects what it inherited, and it leaves with
    # os._exit, destroying nothing: the OS takes its memory back.
    gc.freeze()
    try:
        answer = ("returned", fn())
    except BaseException as e:  # noqa: B902 -- everything goes back to the parent, which decides
        answer = ("raised", e)
    try:
        try:
            if answer[0] == "raised":
                copy.copy(answer[1])  # rebuilt as unpickling rebuilds it: from its args, which some classes refuse
            send.send(answer)
        except Exception as e:  # an answer that does not pickle or cannot be rebuilt: its text still gets back
            send.send(("raised", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]} (not picklable: {e})")))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


class ForkedArrayFunction:
    """``fn(array) -> array`` computed in a child process forked when this is built, where ``make()`` builds ``fn``.

    The child lives until :meth:`close` (or until this object is collected); whatever ``make`` and ``fn`` allocate
    there is returned to the OS when it ends. One call at a time. Inputs go through shared memory (a pipe moved
    19 MB in about 30 ms, a quarter of a PP-LCNet evaluation batch); the (small) outputs through the pipe.

    Example:
        >>> forward = ForkedArrayFunction(lambda: build_predictor(folder).run)
        >>> logits = forward(images)
        >>> forward.close()

    Raises:
        ChildDied: the child died (while building or on a call).
        RuntimeError: ``make`` or ``fn`` raised in the child (its type and message in the text).
    """

    def __init__(self, make: Callable[[], Callable[[np.ndarray], np.ndarray]]):
        context = multiprocessing.get_context("fork")
        self._conn, child_end = context.Pipe(duplex=True)  # a socket pair: it carries the buffer's descriptor
        self._child = context.Process(target=_serve, args=(make, child_end, self._conn), daemon=True)
        self._child.start()
        child_end.close()
        self._buffer: Optional[mmap.mmap] = None
        self._closer = weakref.finalize(self, _stop, self._conn, self._child)
        try:
            self._talk(lambda: None)  # b"ready", or the error that building raised
        except BaseException:
            self.close()
            raise

    def __call__(self, array: np.ndarray) -> np.ndarray:
        array = np.ascontiguousarray(array)
        return self._talk(lambda: self._send(array), _receive_array)

    def close(self) -> None:
        self._closer()

    def _send(self, array: np.ndarray) -> None:
        if self._buffer is None or len(self._buffer) < array.nbytes:
            fd = os.memfd_create("paddlex_cls_batch")
            try:
                os.ftruncate(fd, max(array.nbytes, 1))
                self._buffer = mmap.mmap(fd, max(array.nbytes, 1))
                self._conn.send_bytes(b"B")
                reduction.send_handle(self._conn, fd, self._child.pid)
            finally:
                os.close(fd)
        np.frombuffer(self._buffer, array.dtype, array.size).reshape(array.shape)[...] = array
        self._conn.send_bytes(b"A" + _header(array))

    def _talk(self, ask: Callable[[], None], read: Optional[Callable] = None):
        """Send (``ask``), then read the child's status word (b"error": its text is raised) and, with ``read``, the
        answer."""
        try:
            ask()
            if self._conn.recv_bytes() == b"error":
                raise RuntimeError(self._conn.recv_bytes().decode("utf-8", "replace"))
            return read(self._conn) if read else None
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._child.join(5)
            raise ChildDied(_how_it_ended(self._child.exitcode)) from None


def can_serve_forked() -> bool:
    """Whether :class:`ForkedArrayFunction` works here (fork, and memfd for its shared buffer: Linux)."""
    return can_fork() and hasattr(os, "memfd_create")


def _serve(make: Callable[[], Callable[[np.ndarray], np.ndarray]], conn, parent_end) -> None:
    # the parent's end is closed here so that the parent closing its own ends this loop with EOFError
    parent_end.close()
    gc.freeze()  # see _answer
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it then closes the pipe
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the trainer's checkpoint-and-unwind handler
    buffer = None
    try:
        fn = _or_report(conn, make)
        if fn is not None:
            conn.send_bytes(b"ready")
        while fn is not None:
            message = conn.recv_bytes()
            if message == b"Q":
                break
            if message == b"B":  # a new, larger input buffer
                fd = reduction.recv_handle(conn)
                buffer = mmap.mmap(fd, os.fstat(fd).st_size)
                os.close(fd)
                continue
            dtype, dims = _parse_header(message[1:])
            array = np.frombuffer(buffer, dtype, int(np.prod(dims))).reshape(dims)
            out = _or_report(conn, lambda a=array: np.ascontiguousarray(fn(a)))
            if out is not None:
                conn.send_bytes(b"array")
                conn.send_bytes(_header(out))
                conn.send_bytes(memoryview(out).cast("B") if out.size else b"")
    except (EOFError, OSError):
        pass
    finally:
        os._exit(0)


def _or_report(conn, work: Callable):
    """``work()``, or None after sending b"error" and the exception's text to the parent."""
    try:
        return work()
    except Exception as e:  # noqa: B902 -- goes back to the parent as text
        conn.send_bytes(b"error")
        conn.send_bytes(f"{type(e).__name__}: {e}".encode("utf-8", "replace"))
        return None


def _header(array: np.ndarray) -> bytes:
    return f"{array.dtype.str}|{','.join(map(str, array.shape))}".encode("ascii")


def _parse_header(header: bytes) -> Tuple[np.dtype, Tuple[int, ...]]:
    dtype, _, shape = header.decode("ascii").partition("|")
    return np.dtype(dtype), tuple(int(d) for d in shape.split(",") if d)


def _receive_array(conn) -> np.ndarray:
    dtype, dims = _parse_header(conn.recv_bytes())
    return np.frombuffer(conn.recv_bytes(), dtype).reshape(dims)


def _stop(conn, child) -> None:
    # "quit", not only closing: a process forked here meanwhile (a loader worker) holds a copy of this end, so
    # the child would not see the end of the pipe until that process exits
    try:
        conn.send_bytes(b"Q")
    except OSError:
        pass
    conn.close()
    child.join(5)
    if child.is_alive():
        child.kill()
        child.join()


def _how_it_ended(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode} without an answer"
