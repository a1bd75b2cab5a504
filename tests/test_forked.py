"""run_forked: the engine trial's child process (a result or an exception back, a crash reported, nothing inherited
destroyed in the child)."""
from __future__ import annotations

import gc
import os
import signal
import time

import pytest

from paddlex_cls.engine.steps.forked import ChildDied, ChildTimedOut, can_fork, run_forked

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
