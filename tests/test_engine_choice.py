"""Train.engine: auto picks the static engine only when it builds, agrees with dygraph and is faster."""
from __future__ import annotations

import dataclasses
import os
import signal
import time

import numpy as np
import pytest

from paddlex_cls.device import parse_device
from paddlex_cls.engine.steps import choose
from paddlex_cls.engine.steps.base import EngineState, StepResult
from paddlex_cls.engine.steps.choose import Trial, choose_engine
from paddlex_cls.engine.steps.dygraph import DygraphStep
from paddlex_cls.engine.steps.static import StaticStep
from paddlex_cls.errors import ConfigError, RuntimeFailure
from paddlex_cls.models import get_entry
from tests.test_static_engine import make_spec, registry_factory

ENGINES = {"static": StaticStep, "dygraph": DygraphStep}
NAME = "PP-LCNet_x0_25"


def build(name, spec):
    return ENGINES[name](spec)


class FaultyStatic(DygraphStep):
    """A dygraph engine posing as the static one, with a fault injected into its steps."""

    name = "static"
    fault = "nan"
    drift = 0.1  # what "drift" adds to every loss after the first

    def train_batch(self, images, labels, targets=None) -> StepResult:
        result = super().train_batch(images, labels, targets)
        if self.fault == "raise":
            raise RuntimeError("(PreconditionNotMet) could not create a primitive descriptor")
        if self.fault == "crash":  # a kernel that segfaults
            os.kill(os.getpid(), signal.SIGSEGV)
        if self.fault == "slow":
            time.sleep(0.2)
        self.steps = getattr(self, "steps", 0) + 1
        drifting = self.fault == "drift" and self.steps > 1
        loss = result.loss * (1.01 if self.fault == "off" else 1) + (self.drift if drifting else 0)
        return StepResult(float("nan") if self.fault == "nan" else loss, result.top1)

    def load_state(self, state: EngineState) -> None:
        super().load_state(EngineState(state.model))  # dygraph cannot drop accumulators it made in the trial

    def set_backbone_frozen(self, frozen: bool) -> None:
        if self.fault != "thaw":  # "thaw": freezing has no effect
            super().set_backbone_frozen(frozen)


def faulty(fault: str):
    kind = type(f"Faulty_{fault}", (FaultyStatic,), {"fault": fault})
    return lambda name, spec: kind(spec) if name == "static" else DygraphStep(spec)


def test_dygraph_and_unsupported_runs():
    spec = make_spec(registry_factory(NAME))
    assert choose_engine("dygraph", spec, NAME, build).step.name == "dygraph"
    for changes, key in (({"world_size": 2}, "Global.device"), ({"device": parse_device("gpu:0")}, "Global.device"),
                         ({"dy2st": True}, "Train.dy2st")):
        other = dataclasses.replace(spec, **changes)
        choice = choose_engine("auto", other, NAME, faulty("raise"))
        assert choice.step.name == "dygraph" and "the static engine" in choice.reason and key in choice.reason
        with pytest.raises(ConfigError, match=f"Train.engine=static .*{key}") as err:
            choose_engine("static", other, NAME, build)
        assert err.value.exit_code == 2
    with pytest.raises(ConfigError, match="not one of"):
        choose_engine("fast", spec, NAME, build)


@pytest.mark.parametrize("fault, words", [("nan", "non-finite"), ("off", "first loss"), ("drift", "second loss"),
                                          ("raise", "first step"), ("crash", "crashed in its trial")])
def test_faults_fall_back_or_fail_clearly(fault, words):
    spec = make_spec(registry_factory(NAME))
    choice = choose_engine("auto", spec, NAME, faulty(fault))
    assert choice.step.name == "dygraph" and words in choice.reason, choice.reason
    with pytest.raises(RuntimeFailure, match=words) as err:
        choose_engine("static", spec, NAME, faulty(fault))
    assert "Train.engine=dygraph" in str(err.value)


def test_the_trial_runs_in_a_child_and_the_run_builds_only_its_engine():
    """The trial's engines (and the memory Paddle's oneDNN kernels keep after they close) stay in a child process:
    this process builds the chosen engine and nothing else."""
    built = []

    def recording(kind):
        def make(name, spec):
            built.append(name)
            return kind(spec) if name == "static" else DygraphStep(spec)
        return make

    spec = make_spec(registry_factory(NAME))
    slow = type("Faulty_slow", (FaultyStatic,), {"fault": "slow"})
    assert choose_engine("auto", spec, NAME, recording(slow)).step.name == "dygraph"
    assert built == ["dygraph"]
    built.clear()
    fine = type("Faulty_none", (FaultyStatic,), {"fault": None})
    assert choose_engine("static", spec, NAME, recording(fine)).step.name == "static"
    assert built == ["static"]


class ChaoticDygraph(DygraphStep):
    """A dygraph engine whose second loss swings with the scale of its first step's images, as a chaotic model's
    does: a relative change of 1e-6 moves it by 0.2."""

    def train_batch(self, images, labels, targets=None) -> StepResult:
        result = super().train_batch(images, labels, targets)
        self.scales = getattr(self, "scales", []) + [float(np.abs(images).sum())]
        if len(self.scales) != 2:
            return result
        swing = 2e5 * (self.scales[0] - self.scales[1]) / self.scales[1]
        return StepResult(result.loss + swing, result.top1)


@pytest.mark.parametrize("drift, accepted", [(0.1, True), (1.0, False)])
def test_second_loss_judged_against_dygraphs_own_rounding_spread(drift, accepted):
    drifting = type("Drifting", (FaultyStatic,), {"fault": "drift", "drift": drift})

    def engines(name, spec):
        return drifting(spec) if name == "static" else ChaoticDygraph(spec)

    spec = make_spec(registry_factory(NAME))
    if accepted:
        choice = choose_engine("static", spec, NAME, engines)
        assert "within what rounding-level input changes move dygraph's own (0.2)" in choice.reason, choice.reason
    else:
        with pytest.raises(RuntimeFailure, match=r"second loss .*move dygraph's own by 0\.2"):
            choose_engine("static", spec, NAME, engines)
    # against a steady dygraph the 10% bound holds: the same drift is refused
    assert "second loss" in choose_engine("auto", spec, NAME, faulty("drift")).reason


def test_freezing_that_moves_the_backbone_is_refused():
    spec = make_spec(registry_factory(NAME), head=get_entry(NAME).head, freeze_epochs=1)
    choice = choose_engine("auto", spec, NAME, faulty("thaw"))
    assert choice.step.name == "dygraph" and "changed the frozen backbone" in choice.reason, choice.reason
    with pytest.raises(RuntimeFailure, match="changed the frozen backbone"):
        choose_engine("static", spec, NAME, faulty("thaw"))


def test_build_failure_falls_back():
    def broken(name, spec):
        if name == "static":
            raise ValueError("(InvalidArgument) The op pd_op.foo has no kernel for OneDNN\nC++ trace...")
        return DygraphStep(spec)

    choice = choose_engine("auto", make_spec(registry_factory(NAME)), NAME, broken)
    assert choice.step.name == "dygraph" and "did not build (ValueError: (InvalidArgument)" in choice.reason
    assert "C++" not in choice.reason


def test_slower_static_and_known_slow_models(monkeypatch):
    spec = make_spec(registry_factory(NAME))
    choice = choose_engine("auto", spec, NAME, faulty("slow"))
    assert choice.step.name == "dygraph" and "not faster" in choice.reason
    assert "too few" in choose_engine("auto", spec, NAME, build, total_steps=10).reason
    monkeypatch.setitem(choose.KNOWN_SLOW, NAME, "far slower under static oneDNN in the probe")
    assert "probe" in choose_engine("auto", spec, NAME, build).reason
    assert choose_engine("static", spec, NAME, faulty("slow")).step.name == "static"  # asked for: no race


class WarmingStatic(DygraphStep):
    """A static engine whose first step is slow (creating its kernels), then as fast as dygraph."""

    name = "static"

    def train_batch(self, images, labels, targets=None) -> StepResult:
        if not getattr(self, "warm", False):
            time.sleep(1.0)
            self.warm = True
        return super().train_batch(images, labels, targets)


class SlowDygraph(DygraphStep):
    def train_batch(self, images, labels, targets=None) -> StepResult:
        time.sleep(0.1)
        return super().train_batch(images, labels, targets)


def test_a_slow_first_static_step_does_not_decide_the_race():
    """The first static step creates every oneDNN kernel (9-24x a first dygraph step in the probe, for models then
    1.1-2.5x faster): the warm second step decides whether the race is run at all."""
    spec = make_spec(registry_factory(NAME))
    make = lambda name, spec: WarmingStatic(spec) if name == "static" else SlowDygraph(spec)  # noqa: E731
    choice = choose_engine("auto", spec, NAME, make, trial=Trial(slow_factor=2.0))
    assert choice.step.name == "static", choice.reason
    assert "faster in a trial" in choice.reason


def test_chosen_static_engine_starts_from_the_initial_state():
    """The trial under oneDNN with every program of a fine-tuning run (accumulation, frozen backbone)."""
    spec = make_spec(registry_factory(NAME), head=get_entry(NAME).head, freeze_epochs=1, accum_steps=2,
                     class_weights=np.linspace(0.5, 2.0, 5).astype(np.float32), backbone_lr_scale=0.1)
    choice = choose_engine("static", spec, NAME, build, total_steps=10, trial=Trial())
    assert choice.step.name == "static" and "agree with dygraph" in choice.reason and "frozen" in choice.reason
    fresh = StaticStep(spec).state()
    got = choice.step.state()
    assert got.optimizer["LR_Scheduler"] == fresh.optimizer["LR_Scheduler"]
    for part in ("model", "optimizer"):
        assert set(getattr(got, part)) == set(getattr(fresh, part))
        for k, v in getattr(fresh, part).items():
            if k != "LR_Scheduler":
                np.testing.assert_array_equal(getattr(got, part)[k], v, err_msg=k)


def test_auto_runs_the_trial_for_real():
    choice = choose_engine("auto", make_spec(registry_factory(NAME)), NAME, build)
    assert choice.step.name in ("static", "dygraph")
    assert "trial" in choice.reason or "not faster" in choice.reason, choice.reason
