"""Which engine trains a run (``Train.engine``: auto | static | dygraph), decided once before the first epoch.

``auto`` takes the static oneDNN engine for single-process CPU training when a short trial at the run's own batch
and image size shows that its program builds and runs, its first loss agrees with one dygraph step on the same
batch and weights (1e-4 relative), so do its eval logits, the BatchNorm statistics of that step and the loss after
one update (within 10% of the change that update made), a step with the backbone frozen leaves the backbone as it
was (when ``Train.freeze_backbone`` is set), and its steps are faster. A loss outside its bound still passes when
dygraph's own loss moves as much under a rounding-level change of its input (deep nets and BatchNorm over 1x1 maps
amplify rounding: no two implementations agree more closely there). The trial costs one static build plus
``2 + steps`` steps of each engine (seconds for small inputs, about a minute for ResNet18 at 224 px), which a timing
table could not replace: the ratio depends on batch, size and threads, and a model fast at 32 px can be slow at
224 px. It runs in a forked child process (``forked.py``): the engines it builds, and the memory their oneDNN kernels
keep after closing, end with the child, and a kernel that crashes there sends ``auto`` to dygraph (``static``: a
clear error) instead of killing the run; the chosen engine is then built afresh here (one more build, about a second
for small models). Models that the probe (``bench/static_engine_probe.py``) found far slower or broken under static
skip the trial (``KNOWN_SLOW``). ``static`` runs the same checks without the race, and fails with a clear
error instead of falling back; ``dygraph`` builds the dygraph engine directly.

Runs the static engine does not do: GPU or other devices, several processes (data parallel), and
``Train.dy2st=true`` (which asks for the dygraph Layer converted by ``paddle.jit.to_static``): ``auto`` trains them
in dygraph and says why, ``static`` refuses them with a config error naming the key.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import paddle

from ...errors import ConfigError, RuntimeFailure, first_line
from ..optim import is_head
from . import ENGINE_CHOICES
from .base import EngineState, TrainStep
from .forked import ChildDied, ChildTimedOut, can_fork, run_forked
from .spec import StepSpec

#: state-dict key endings of BatchNorm running statistics (Paddle's names)
RUNNING_STATS = ("._mean", "._variance")
#: a trial that has not answered by then is ended and counts as failed: far longer than a trial takes (about a minute
#: for ResNet18 at 224 px; a far slower warm static step ends it early, ``Trial.slow_factor``), but a hung kernel
#: must not hang the run
TRIAL_TIMEOUT_S = 1800.0
#: model name -> why auto does not try the static engine (from bench/static_engine_probe.py)
KNOWN_SLOW: Dict[str, str] = {}


@dataclass(frozen=True)
class Trial:
    """How ``auto`` races the engines.

    Attributes:
        steps: timed steps per engine besides the checked second one (the first warms caches up).
        margin: static must take at most this fraction of a dygraph step.
        slow_factor: a second static step this many times dygraph's second step ends the trial without the race
            (far slower). The first steps do not decide: a first static step creates every oneDNN kernel, which
            took 9-24x a first dygraph step in models that then ran 1.1-2.5x faster (bench/results/static_probe.json).
        loss_rtol: the first losses (the forward pass) must agree this closely.
        update_rtol: the second losses (after one update) must agree this closely, relative to the change of the
            dygraph loss that the update made (plus ``loss_rtol``).
        eval_rtol: eval logits (relative norm) and BatchNorm running statistics after the first step must agree
            this closely.
        perturbation: a loss outside those bounds is measured against dygraph's own rounding spread: the
            largest change of dygraph's loss when the first step's images are scaled by ``1 +- perturbation``
            (a few float32 ulps).
        spread_factor: the static loss may then differ by up to this many times that spread.
        min_steps: shorter runs are not worth a trial.
    """

    steps: int = 2
    margin: float = 0.9
    slow_factor: float = 20.0
    loss_rtol: float = 1e-4
    update_rtol: float = 0.1
    eval_rtol: float = 1e-2
    perturbation: float = 1e-6
    spread_factor: float = 2.0
    min_steps: int = 50

    def loss_bound(self, want: float, change: float = 0.0) -> float:
        """How far a static loss may be from dygraph's ``want`` outright: ``loss_rtol`` relative, plus
        ``update_rtol`` of ``change`` (the loss change the update before it made; 0 for the first loss)."""
        return self.loss_rtol * abs(want) + self.update_rtol * abs(change)

    def within_spread(self, gap: float, bound: float, spread: float) -> bool:
        """Whether a loss ``gap`` over its ``bound`` is explained by dygraph's own rounding ``spread``."""
        return gap <= bound + self.spread_factor * spread


@dataclass
class EngineChoice:
    """The engine to train with, ready at its initial state, and why it was chosen (logged once by the loop)."""

    step: TrainStep
    reason: str


class _Rejected(Exception):
    """The static engine cannot be used for this run (the message says why)."""


def choose_engine(requested: str, spec: StepSpec, model_name: str, build: Callable[[str, StepSpec], TrainStep],
                  total_steps: Optional[int] = None, trial: Trial = Trial()) -> EngineChoice:
    """Build the engine ``requested`` asks for (see the module docstring).

    Args:
        requested: ``Train.engine``.
        model_name: the registry name (for ``KNOWN_SLOW`` and messages).
        build: makes an engine by name (``steps.build_step``).
        total_steps: optimizer steps the run will take, if known: ``auto`` keeps dygraph for runs shorter than
            ``trial.min_steps`` (the static build and the trial would cost more than they save).

    Raises:
        ConfigError: ``static`` asked for a run it cannot do (GPU, several processes, ``Train.dy2st``).
        RuntimeFailure: ``static`` asked for, but the program fails to build or run, disagrees or gives NaN.
    """
    if requested not in ENGINE_CHOICES:
        raise ConfigError(f"Train.engine={requested!r} is not one of {', '.join(ENGINE_CHOICES)}",
                          "e.g. -o Train.engine=auto")

    def fresh(name: str) -> TrainStep:
        paddle.seed(spec.seed)  # the same initial weights as building it directly after the run's seeding
        return build(name, spec)

    if requested == "dygraph":
        return EngineChoice(fresh("dygraph"), "Train.engine=dygraph")
    unsupported = _unsupported(spec)
    if unsupported and requested == "static":
        raise ConfigError(f"Train.engine=static {unsupported[0]}", f"{unsupported[1]}, or use -o Train.engine=auto "
                          "(or dygraph)")
    if unsupported:
        return EngineChoice(fresh("dygraph"), f"dygraph engine: the static engine {unsupported[0]}")
    if requested == "auto" and model_name in KNOWN_SLOW:
        return EngineChoice(fresh("dygraph"), f"dygraph engine: {KNOWN_SLOW[model_name]}")
    if requested == "auto" and total_steps is not None and total_steps < trial.min_steps:
        return EngineChoice(fresh("dygraph"), f"dygraph engine: {total_steps} steps are too few to pay for building "
                            "and trying the static engine")
    try:
        accepted, why = _run_trial(lambda: _trial(spec, fresh, trial, race=requested == "auto"))
        static = _attempt("did not build", lambda: fresh("static")) if accepted else None
    except _Rejected as e:
        if requested == "static":
            raise RuntimeFailure(f"Train.engine=static cannot train {model_name}: {e}",
                                 "use -o Train.engine=auto or -o Train.engine=dygraph") from None
        return EngineChoice(fresh("dygraph"), f"dygraph engine: the static engine {e}")
    if static is None:
        return EngineChoice(fresh("dygraph"), f"dygraph engine: {why}")
    return EngineChoice(static, f"static oneDNN engine: {why}")


def _run_trial(verdict: Callable[[], Tuple[bool, str]]) -> Tuple[bool, str]:
    """The trial's verdict, reached in a child process where the platform forks (forked.py says why): the engines
    it builds, and the memory their kernels keep, end with the child; the chosen engine is built afresh here."""
    if not can_fork():
        return verdict()
    try:
        return run_forked(verdict, timeout=TRIAL_TIMEOUT_S)
    except ChildDied as e:
        raise _Rejected(f"{'did not finish' if isinstance(e, ChildTimedOut) else 'crashed in'} its trial ({e})") \
            from None


def _unsupported(spec: StepSpec) -> Optional[Tuple[str, str]]:
    """Why the static engine cannot train this run (naming the config key), and how to let it; None if it can."""
    if spec.device.type != "cpu":
        return f"runs on CPU only (Global.device={spec.device})", "set -o Global.device=cpu"
    if spec.world_size > 1:
        return (f"runs in a single process (this run has {spec.world_size}, Global.device)",
                "train on one CPU process with -o Global.device=cpu")
    if spec.dy2st:
        return ("does not take Train.dy2st=true (that converts the dygraph Layer with paddle.jit.to_static)",
                "set -o Train.dy2st=false")
    return None


def _trial(spec: StepSpec, build: Callable[[str], TrainStep], trial: Trial, race: bool) -> Tuple[bool, str]:
    """Whether the static engine passes (builds, agrees with dygraph and, with ``race``, is faster), and why. The
    engines it builds are closed: the chosen one is built afresh at the run's initial state."""
    tic = time.perf_counter()
    static = _attempt("did not build", lambda: build("static"))
    built = time.perf_counter() - tic
    reference = None
    try:
        initial = static.state()
        reference = build("dygraph")
        reference.load_state(EngineState(model=initial.model))
        batch = _sample_batch(spec)

        def spread(steps: int, want: float) -> float:
            return rounding_spread(build, initial, batch, steps, want, trial)

        timing, spreads = _checked_steps(static, reference, batch, trial, spread)
        verdict = "its first two losses agree with dygraph" + (f" ({'; '.join(spreads)})" if spreads else "")
        if spec.freeze_epochs:
            _check_frozen_step(static, batch, spec.head)
            verdict += ", a frozen-backbone step keeps the backbone"
        if race:
            warm = timing[1]
            far_slower = warm[0] > trial.slow_factor * warm[1]
            static_s, dygraph_s = warm if far_slower else _race(static, reference, batch, trial, warm)
            if static_s > trial.margin * dygraph_s:
                return False, (f"static steps are not faster here ({static_s:.3f} s vs {dygraph_s:.3f} s per step "
                               f"of {spec.batch_size} at {spec.image_size} px)")
            verdict += f", {dygraph_s / static_s:.1f}x faster in a trial ({static_s:.3f} s per step)"
    finally:
        static.close()
        if reference is not None:
            reference.close()
    return True, f"{verdict}; trial took {time.perf_counter() - tic:.0f} s (build {built:.0f} s)"


def _attempt(what: str, fn):
    """``fn()``, with any Paddle failure (an op without a kernel, a shape oneDNN rejects) as a _Rejected."""
    try:
        return fn()
    except (RuntimeError, ValueError, TypeError, NotImplementedError, AssertionError, MemoryError,
            RuntimeFailure) as e:  # RuntimeFailure: a static step's kernel failure, as the engine reports it
        raise _Rejected(f"{what} ({type(e).__name__}: {first_line(e)})") from None


def _sample_batch(spec: StepSpec) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    rng = np.random.default_rng(spec.seed)
    images = rng.standard_normal((spec.batch_size, 3, spec.image_size, spec.image_size)).astype(np.float32)
    labels = np.arange(spec.batch_size) % spec.num_classes
    mixing = any(a in spec.recipe.augment for a in ("mixup", "cutmix"))
    targets = np.eye(spec.num_classes, dtype=np.float32)[labels] if mixing else None
    return images, labels, targets


def _checked_steps(static: TrainStep, reference: TrainStep, batch, trial: Trial,
                   spread: Callable[[int, float], float]) -> Tuple[List[Tuple[float, float]], List[str]]:
    """Eval logits from the same weights, then two steps of each with the same random draws: the first loss
    (the forward), the BatchNorm running statistics after it, and the second loss (the update). _Rejected unless
    all agree, a loss outside its bound being allowed ``trial.spread_factor`` times dygraph's own rounding spread
    (``spread(steps, dygraph_loss)``, measured only then). Returns the (static, dygraph) seconds of each step and a
    note per loss accepted on the spread."""
    times: List[Tuple[float, float]] = []
    notes: List[str] = []
    ours = _attempt("failed to evaluate", lambda: static.eval_forward()(batch[0]))
    theirs = reference.eval_forward()(batch[0])
    if not np.linalg.norm(ours - theirs) <= trial.eval_rtol * np.linalg.norm(theirs):
        raise _Rejected("disagrees with dygraph on eval logits")
    first = 0.0
    for i, what in enumerate(("first", "second")):
        paddle.seed(i)
        want, dygraph_s = _timed(lambda: reference.train_batch(*batch))
        paddle.seed(i)
        got, static_s = _timed(lambda w=what: _attempt(f"failed on its {w} step", lambda: static.train_batch(*batch)))
        if not np.isfinite(got.loss):
            raise _Rejected(f"gave a non-finite {what} loss ({got.loss}; dygraph {want.loss:.6g})")
        # the second loss against the change the update made: AdamW's first update is about lr * sign(grad), so
        # rounding-level gradient differences move some weights by a full lr; the loss hardly notices
        allowed = trial.loss_bound(want.loss, want.loss - first if i else 0.0)
        gap = abs(got.loss - want.loss)
        if gap > allowed:
            # deep or 1x1-spatial BatchNorm models amplify rounding: dygraph itself moves this much under a
            # few-ulp change of its input (MobileNetV1_x0_5 at 32 px: second loss 2.309 -> 2.681), so no other
            # implementation can agree more closely than that
            noise = spread(i + 1, want.loss)
            if not trial.within_spread(gap, allowed, noise):
                raise _Rejected(f"disagrees with dygraph on the {what} loss ({got.loss:.7g} vs {want.loss:.7g}; "
                                f"rounding-level input changes move dygraph's own by {noise:.2g})")
            notes.append(f"the {what} loss by {gap:.2g}, within what rounding-level input changes move dygraph's "
                         f"own ({noise:.2g})")
        first = want.loss
        times.append((static_s, dygraph_s))
        if i == 0:
            _check_running_stats(static, reference, trial)
    return times, notes


def rounding_spread(build: Callable[[str], TrainStep], initial: EngineState, batch, steps: int, want: float,
                    trial: Trial, seeds: Tuple[int, ...] = (0, 1)) -> float:
    """The largest change of dygraph's loss at step ``steps`` (1 or 2, from the initial weights, ``paddle.seed``
    ``seeds[i]`` before step i, as the checked steps draw) when the first step's images are scaled by
    ``1 +- trial.perturbation``. ``bench/static_engine_probe.py`` judges with it too."""
    images, rest = batch[0], batch[1:]
    worst = 0.0
    for sign in (1.0, -1.0):
        probe = build("dygraph")
        try:
            probe.load_state(EngineState(model=initial.model))
            for i in range(steps):
                paddle.seed(seeds[i])
                scaled = images * np.float32(1.0 + sign * trial.perturbation) if i == 0 else images
                loss = probe.train_batch(scaled, *rest).loss
        finally:
            probe.close()
        worst = max(worst, abs(loss - want))
    return worst


def _timed(fn):
    tic = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - tic


def _check_running_stats(static: TrainStep, reference: TrainStep, trial: Trial) -> None:
    ours, theirs = static.state().model, reference.state().model
    for key in (k for k in theirs if k.endswith(RUNNING_STATS)):
        if not np.allclose(ours[key], theirs[key], rtol=trial.eval_rtol, atol=1e-4):
            raise _Rejected(f"disagrees with dygraph on the running statistic {key} after its first step")


def _check_frozen_step(static: TrainStep, batch, head: str) -> None:
    """One step with the backbone frozen: it must run, give a finite loss and change no backbone tensor (weights
    and BatchNorm statistics); the engine is unfrozen again afterwards."""
    before = static.state().model
    static.set_backbone_frozen(True)
    try:
        result = _attempt("failed on a frozen-backbone step", lambda: static.train_batch(*batch))
    finally:
        static.set_backbone_frozen(False)
    if not np.isfinite(result.loss):
        raise _Rejected(f"gave a non-finite loss with the backbone frozen ({result.loss})")
    after = static.state().model
    moved = [k for k in before if not is_head(k, head) and not np.array_equal(before[k], after[k])]
    if moved:
        raise _Rejected(f"changed the frozen backbone ({', '.join(moved[:3])})")


def _race(static: TrainStep, reference: TrainStep, batch, trial: Trial,
          warm: Tuple[float, float]) -> Tuple[float, float]:
    """Median seconds per step of each engine over ``warm`` (a second step's times) and ``trial.steps``
    alternating steps."""
    times: Dict[str, list] = {"static": [warm[0]], "dygraph": [warm[1]]}
    for _ in range(trial.steps):
        for name, step in (("static", static), ("dygraph", reference)):
            result, seconds = _timed(lambda s=step: s.train_batch(*batch))
            times[name].append(seconds)
            if name == "static" and not np.isfinite(result.loss):
                raise _Rejected("gave a non-finite loss in its first steps")
    return float(np.median(times["static"])), float(np.median(times["dygraph"]))
