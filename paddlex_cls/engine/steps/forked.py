"""Run a function in a forked child process and bring back its result: for the engine trial (``choose.py``).

The trial builds a static engine and a dygraph engine only to compare them. Paddle 3.3 does not give back the memory
a static engine's oneDNN kernels allocated once it is closed (its reordered weights and gradients: ResNet18 kept
about 650 MB in use per closed engine at 224 px, batch 16, 100 MB at 32 px; not in Paddle's allocator, not in its
oneDNN blob cache, which can be emptied without freeing any of it), so a run that the trial sends to dygraph carried
the losing engine's memory to its end (docs/training.md, Memory: 2314 MB against 679 MB after the first step). A
child process returns it all when it exits. It also keeps a kernel that crashes (a segfault in a static program) from
taking the run down with it.
"""
from __future__ import annotations

import copy
import gc
import multiprocessing
import os
import signal
import sys
from typing import Callable, Optional, TypeVar

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
    child = context.Process(target=_answer, args=(fn, send), daemon=True)
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


def _how_it_ended(exitcode) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with code {exitcode} without an answer"
