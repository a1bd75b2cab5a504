"""run_forked: the engine trial's child process (a result or an exception back, a crash reported, nothing inherited
destroyed in the child); ForkedArrayFunction: the static engine's evaluation predictor served from a child."""
from __future__ import annotations

import gc
import os
import signal
import time

import numpy as np
import pytest

from paddlex_cls.engine.steps.forked import (
    ChildDied,
    ChildTimedOut,
    ForkedArrayFunction,
    can_fork,
    can_serve_forked,
    run_forked,
)

pytestmark = pytest.mark.skipif(not can_fork(), reason="no fork on this platform")


class Refused(Exception):
    pass


def _refuse():
    raise Refused("not this one")


def test_value_and_exception_come_back():
    parent = os.getpid()
    assert run_forked(lambda: (os.getpid() != parent, [1, 2])) == (True, [1, 2])
    with pytest.raises(Refused, match="not this one"):
        run_forked(_refuse)


class Unbuildable(Exception):
    def __init__(self, a, b):  # pickles with args (message,), cannot be rebuilt from them
        super().__init__(f"{a}/{b}")


def _unbuildable():
    raise Unbuildable("x", "y")


def test_an_exception_that_does_not_unpickle_still_reports_its_text():
    with pytest.raises(RuntimeError, match="Unbuildable: x/y"):
        run_forked(_unbuildable)


def test_a_child_that_dies_is_reported():
    with pytest.raises(ChildDied, match="killed by SIGKILL"):
        run_forked(lambda: os.kill(os.getpid(), signal.SIGKILL))
    with pytest.raises(ChildDied, match="exited with code 7"):
        run_forked(lambda: os._exit(7))
    with pytest.raises(ChildTimedOut, match="no answer within 1 s"):
        run_forked(lambda: time.sleep(60), timeout=1)


class _Cycle:
    """Garbage whose destruction in a child would end it (as a Paddle executor made in the parent hangs it)."""

    def __init__(self):
        self.me = self

    def __del__(self):
        if os.getpid() != self.parent:
            os._exit(3)


def test_garbage_inherited_from_the_parent_is_not_destroyed_in_the_child():
    gc.disable()
    try:
        cycle = _Cycle()
        cycle.parent = os.getpid()
        del cycle  # unreachable, not yet collected: the child gets a copy
        assert run_forked(lambda: gc.collect() >= 0) is True
    finally:
        gc.enable()
        gc.collect()


def _served(array):
    """What the child computes: its pid beside a function of the array, so both the value and the place show."""
    return np.concatenate([[os.getpid()], array.sum(axis=(1, 2, 3)) * 2]).astype(np.float64)


def _fail_on_negative(array):
    if array.min() < 0:
        raise ValueError(f"negative input, shape {array.shape}")
    return array[:, 0]


@pytest.mark.skipif(not can_serve_forked(), reason="needs fork and memfd (Linux)")
def test_forked_array_function_serves_batches_of_any_size_from_one_child():
    forward = ForkedArrayFunction(lambda: _served)
    rng = np.random.default_rng(0)
    pids = set()
    try:
        # growing, then shrinking, batches: the shared input buffer is replaced when too small
        for shape in ((2, 3, 4, 4), (7, 3, 8, 8), (1, 3, 8, 8), (0, 3, 8, 8), (16, 3, 32, 32)):
            batch = rng.standard_normal(shape).astype(np.float32)
            out = forward(batch)
            assert out.dtype == np.float64 and out.shape == (shape[0] + 1,)
            np.testing.assert_allclose(out[1:], batch.sum(axis=(1, 2, 3)) * 2, rtol=1e-5)
            pids.add(int(out[0]))
        child = forward._child
    finally:
        forward.close()
    assert pids == {child.pid} and child.pid != os.getpid()
    assert not child.is_alive()  # closing ends it


@pytest.mark.skipif(not can_serve_forked(), reason="needs fork and memfd (Linux)")
def test_forked_array_function_reports_errors_and_a_dead_child():
    with pytest.raises(RuntimeError, match="ZeroDivisionError"):
        ForkedArrayFunction(lambda: 1 / 0)  # building fails: its error, not a hang
    forward = ForkedArrayFunction(lambda: _fail_on_negative)
    try:
        with pytest.raises(RuntimeError, match=r"ValueError: negative input, shape \(2, 2\)"):
            forward(-np.ones((2, 2), np.float32))
        np.testing.assert_array_equal(forward(np.ones((3, 2), np.float32)), [1, 1, 1])  # still serving
        os.kill(forward._child.pid, signal.SIGKILL)
        with pytest.raises(ChildDied, match="killed by SIGKILL"):
            forward(np.ones((3, 2), np.float32))
    finally:
        forward.close()


@pytest.mark.skipif(not can_serve_forked(), reason="needs fork and memfd (Linux)")
def test_forked_array_function_child_ends_when_dropped():
    forward = ForkedArrayFunction(lambda: _served)
    child = forward._child
    del forward
    gc.collect()
    child.join(10)
    assert not child.is_alive()


@pytest.mark.skipif(not can_serve_forked(), reason="needs fork and memfd (Linux)")
def test_forked_array_function_child_ends_on_close_while_another_process_holds_the_pipe():
    """A loader worker forked during an evaluation inherits the parent's end of the pipe: closing must still end the
    child at once (it is told to quit, it does not wait for the end of the pipe)."""
    import multiprocessing

    forward = ForkedArrayFunction(lambda: _served)
    child = forward._child
    holder = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,), daemon=True)
    holder.start()
    try:
        start = time.monotonic()
        forward.close()
        assert not child.is_alive() and time.monotonic() - start < 4
    finally:
        holder.kill()
        holder.join()
