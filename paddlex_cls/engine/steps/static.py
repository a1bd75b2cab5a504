"""The static-graph oneDNN training engine: the registry Layer compiled into static PIR programs, run on CPU.

One Layer is built in dygraph mode; its tensors are re-bound to static parameters of the same names in a training
program per (batch size, soft targets) actually met, an EMA program and an evaluation program, all sharing one
private scope. So the last, smaller batch of an epoch trains through a second program instead of being dropped, and
mixup/cutmix batches through a soft-target program. The optimizer is the one ``build_optimizer`` makes, applied
the way dygraph applies it, so every recipe option keeps its meaning; state crosses the engine boundary with the
Layer's ``state_dict()`` keys and dygraph optimizer-state names.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import paddle

from ..fast_eval import default_threads, program_forward
from ..loss import classification_loss
from ..optim import build_optimizer
from .base import EngineState, StepResult, TrainStep
from .spec import StepSpec
from .static_mode import onednn_enabled, static_onednn
from .static_program import (TensorSlot, append_optimizer_step, bind_static, capture_slots, persistable_names,
                             persistable_var, write_vars)
from .static_rewrites import linears_on_rows, training_rewrites
from .static_state import load_into_scope, state_from_scope

EMA_SUFFIX = "@EMA"


@dataclass
class _Program:
    main: paddle.static.Program
    fetch: List[paddle.pir.Value]
    feed: Optional[paddle.pir.Value] = None


class StaticStep(TrainStep):
    """Trains with static PIR programs under oneDNN; see the module docstring.

    Example:
        >>> step = StaticStep(spec)
        >>> result = step.train_batch(images, labels)
        >>> logits = step.eval_forward()(images)
    """

    name = "static"

    def __init__(self, spec: StepSpec):
        self.spec = spec
        paddle.seed(spec.seed)
        with paddle.utils.unique_name.guard():
            self._layer = spec.model_factory()
        self._slots, initial = capture_slots(self._layer)
        self._names = {s.key: s.name for s in self._slots if s.key}
        self._ema_names = {s.name: s.name + EMA_SUFFIX for s in self._slots if s.key and s.dtype.startswith("float")}
        self._scheduler = spec.scheduler_factory()
        self._scope = paddle.static.Scope()
        self._place = paddle.CPUPlace()
        self._exe = paddle.static.Executor(self._place)
        self._threads = default_threads()
        self._train: Dict[Tuple[int, bool], _Program] = {}
        self._eval: Optional[_Program] = None
        self._ema: Optional[_Program] = None
        self._opt_names: List[str] = []
        mixing = any(a in spec.recipe.augment for a in ("mixup", "cutmix"))
        self._train_program(spec.batch_size, mixing)
        write_vars(self._scope, {s.name: initial[s.name] for s in self._slots}, self._place)
        if spec.recipe.ema_decay:
            self._ema = self._build_ema(spec.recipe.ema_decay)
            write_vars(self._scope, {e: initial[n] for n, e in self._ema_names.items()}, self._place)

    # ---- programs -------------------------------------------------------------------------------------------

    def _train_program(self, batch: int, soft: bool) -> _Program:
        key = (batch, soft)
        if key not in self._train:
            self._train[key] = self._build_train(batch, soft)
        return self._train[key]

    def _build_train(self, batch: int, soft: bool) -> _Program:
        spec, size = self.spec, self.spec.image_size
        main, startup = paddle.static.Program(), paddle.static.Program()
        self._layer.train()
        with static_onednn(), paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
            bind_static(self._slots)
            x = paddle.static.data("x", [batch, 3, size, size], "float32")
            y = paddle.static.data("y", [batch, 1], "int64")
            t = paddle.static.data("t", [batch, spec.num_classes], "float32") if soft else None
            with training_rewrites(self._layer, onednn=onednn_enabled()):
                logits = self._layer(x)
            weights = (paddle.to_tensor(spec.class_weights, dtype="float32")
                       if spec.class_weights is not None else None)
            loss = classification_loss(logits, y, spec.num_classes, spec.recipe.label_smoothing, t, weights)
            optimizer = build_optimizer(self._layer, spec.recipe, self._scheduler, spec.head, spec.backbone_lr_scale)
            append_optimizer_step(optimizer, loss, startup)
        self._create_vars(main, startup)
        self._opt_names = list(optimizer._opti_name_list)
        return _Program(main, [loss, logits])

    def _build_ema(self, decay: float) -> _Program:
        main, startup = paddle.static.Program(), paddle.static.Program()
        with static_onednn(), paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
            values = bind_static(self._slots)
            for s in self._slots:
                if s.name not in self._ema_names:
                    continue
                v = values[s.name]
                e = persistable_var(self._ema_names[s.name], s.shape, s.dtype)
                # the arithmetic of engine/ema.py, op for op
                paddle.assign(decay * e + (1.0 - decay) * v, output=e)
        return _Program(main, [])  # its EMA variables are written by the caller

    def _build_eval(self) -> _Program:
        size = self.spec.image_size
        main, startup = paddle.static.Program(), paddle.static.Program()
        slots = _renamed(self._slots, self._ema_names) if self._ema is not None else self._slots
        self._layer.eval()
        try:
            with static_onednn(), paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard():
                bind_static(slots)
                x = paddle.static.data("x", [-1, 3, size, size], "float32")
                with linears_on_rows(self._layer):
                    logits = self._layer(x)
        finally:
            self._layer.train()
        self._create_vars(main, startup)
        return _Program(main, [logits], feed=x)

    def _create_vars(self, main: paddle.static.Program, startup: paddle.static.Program) -> None:
        """Run the first program's startup in the scope; later programs must find every variable they use there.

        Programs share variables by name (built from the same slots under a fresh name guard), so the scope holds
        one copy of weights and optimizer state: a later program running its own startup would reset them.
        """
        if not self._train:
            with static_onednn(self._scope, kernels=False):
                self._exe.run(startup, scope=self._scope)
            return
        missing = [n for n in persistable_names(main) if self._scope.find_var(n) is None]
        assert not missing, f"a later program would not share variables {missing[:5]}: the engine has a bug"

    def _run(self, program: _Program, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        with static_onednn(self._scope):
            return self._exe.run(program.main, feed=feed, fetch_list=program.fetch, scope=self._scope)

    # ---- TrainStep ------------------------------------------------------------------------------------------

    def train_batch(self, images: np.ndarray, labels: np.ndarray,
                    targets: Optional[np.ndarray] = None) -> StepResult:
        program = self._train_program(len(images), targets is not None)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
        feed = {"x": np.asarray(images, dtype=np.float32), "y": labels}
        if targets is not None:
            feed["t"] = np.asarray(targets, dtype=np.float32)
        loss, logits = self._run(program, feed)
        self._scheduler.step()
        if self._ema is not None:
            self._run(self._ema, {})
        top1 = float((np.asarray(logits).argmax(axis=-1) == labels[:, 0]).mean())
        return StepResult(loss=float(np.asarray(loss).item()), top1=top1)

    def set_backbone_frozen(self, frozen: bool) -> None:
        if frozen:
            raise NotImplementedError("the static engine cannot freeze the backbone yet")

    @property
    def lr(self) -> float:
        return float(self._scheduler.last_lr)

    def state(self) -> EngineState:
        return state_from_scope(self._scope, self._names, self._opt_names, self._scheduler,
                                self._ema_names if self._ema is not None else None)

    def load_state(self, state: EngineState) -> None:
        load_into_scope(self._scope, self._place, state, self._names, self._opt_names, self._scheduler,
                        self._ema_names if self._ema is not None else None)

    def eval_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        """The evaluation program (EMA weights when EMA is on) saved and run by the oneDNN inference predictor,
        which fuses it: several times faster than running it with the executor."""
        if self._eval is None:
            self._eval = self._build_eval()
        return program_forward(self._eval.main, self._eval.feed, self._eval.fetch[0], self._scope, self._threads)

    def close(self) -> None:
        self._train.clear()
        self._eval = self._ema = None
        self._scope = None


def _renamed(slots: List[TensorSlot], names: Dict[str, str]) -> List[TensorSlot]:
    """The slots bound to other variables (the EMA copies) where ``names`` says so."""
    return [replace(s, name=names.get(s.name, s.name)) for s in slots]
