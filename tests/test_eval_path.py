"""FasterEvalPath: each way of evaluating is timed over one whole evaluation, then the faster one is kept; the
dygraph engine's two ways (its Layer, the oneDNN predictor in a forked child) give the same logits."""
from __future__ import annotations

import time

import numpy as np
import pytest

from paddlex_cls.engine.steps.dygraph import DygraphStep
from paddlex_cls.engine.steps.eval_path import FasterEvalPath
from paddlex_cls.engine.steps.forked import can_serve_forked
from tests.test_static_engine import make_spec, registry_factory


def _way(name, log, setup_s=0.0, batch_s=0.0):
    def build():
        log.append(name)
        time.sleep(setup_s)

        def forward(batch):
            time.sleep(batch_s)
            return np.asarray(batch) * (2 if name == "slow" else 2.0)
        return forward
    return build


def _evaluation(paths, ways, batches=3):
    forward = paths.forward(ways)
    return [forward(np.ones((2, 3))) for _ in range(batches)]


def test_each_way_is_tried_once_then_the_faster_is_kept(pxlog):
    log = []
    paths = FasterEvalPath()
    ways = [("slow", _way("slow", log, batch_s=0.05)), ("fast", _way("fast", log, setup_s=0.02))]
    for _ in range(4):
        _evaluation(paths, ways)
    assert log == ["slow", "fast", "fast", "fast"]
    assert paths.chosen == "fast"
    # (a set: pytest may capture a record twice, through the fixture's handler and through propagation)
    assert {r.getMessage().split(" (")[0] for r in pxlog.records} == {"evaluating with the fast from now on"}


def test_set_up_time_counts_against_a_way():
    log = []
    paths = FasterEvalPath()
    ways = [("plain", _way("plain", log, batch_s=0.01)), ("costly", _way("costly", log, setup_s=0.3))]
    for _ in range(3):
        _evaluation(paths, ways)
    assert log == ["plain", "costly", "plain"] and paths.chosen == "plain"


def test_a_way_that_fails_to_set_up_is_dropped_with_a_warning(pxlog):
    log = []

    def broken():
        raise RuntimeError("the predictor did not take the model\nsecond line")

    paths = FasterEvalPath()
    ways = [("plain", _way("plain", log)), ("predictor", broken)]
    for _ in range(3):
        _evaluation(paths, ways)
    assert log == ["plain"] * 3 and paths.chosen == "plain"
    assert {r.getMessage() for r in pxlog.records} == {
        "evaluating without the predictor: it failed to set up (RuntimeError: the predictor did not take the model)"}
    with pytest.raises(ValueError):  # the way without set-up is the fallback: its own failure is not hidden
        FasterEvalPath().forward([("plain", lambda: (_ for _ in ()).throw(ValueError("no")))])


@pytest.mark.skipif(not can_serve_forked(), reason="needs fork and memfd (Linux)")
def test_dygraph_engine_ways_agree():
    step = DygraphStep(make_spec(registry_factory("PP-LCNet_x0_25")))
    x = np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)
    step.train_batch(x, np.arange(4) % 10)  # BatchNorm statistics that are not the initial ones
    by_layer = step.eval_forward()(x)
    by_predictor = step.eval_forward()(x)
    assert set(step._eval_path._seconds) == {"dygraph Layer", "oneDNN predictor"}  # one evaluation each
    np.testing.assert_allclose(by_predictor, by_layer, rtol=1e-4, atol=1e-5)
    step.train_batch(x, np.arange(4) % 10)  # training resumes in training mode after either way
    assert step.model.training
