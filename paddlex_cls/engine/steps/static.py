"""The static-graph oneDNN training engine: the registry Layer compiled into static PIR programs, run on CPU.

One Layer is built in dygraph mode; its tensors are re-bound to static parameters of the same names in every
program, all sharing one private scope:

- a training program (forward, backward, update) per (soft targets, frozen backbone) actually met: mixup/cutmix
  batches train through a soft-target program, and ``Train.freeze_backbone`` epochs through a program whose
  backbone parameters are not trainable and whose backbone BatchNorm layers run on their running statistics (as
  dygraph freezes them). The batch dimension is left open, so the last, smaller batch of an epoch runs the same
  program: a program per batch size held oneDNN memory of its own and created its kernels again (ResNet18, 32 px,
  batch 64: +194 MB in use for the last batch's program, +111 MB through the open one; over the 59 static models
  0.54-0.84x the memory in use, bench/results/static_open_batch.txt);
- with ``Train.accum_steps`` > 1, a gradient program per (soft targets, frozen) that adds each batch's
  gradients (its loss weighted by its share of the group) into gradient buffers, and an update program that applies
  the optimizer to those buffers: true accumulation, as the dygraph engine does it (BatchNorm sees each batch);
- an EMA program and an evaluation program.

The optimizer is the one ``build_optimizer`` makes (weight-decay groups, clipping, layer decay, the backbone LR
scale), applied the way dygraph applies it, so every recipe option keeps its meaning; state crosses the engine
boundary with the Layer's ``state_dict()`` keys and dygraph optimizer-state names. The programs a run will use are
built when the engine is built, so a program that does not build shows in the engine trial (``choose.py``).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ...errors import RuntimeFailure, first_line
from ...quiet import quiet_static_build
from ...runtime import available_cores, keep_freed_host_memory, release_freed_host_memory
from ..fast_eval import program_forward
from ..loss import classification_loss
from ..optim import build_optimizer, is_head
from .base import Batch, EngineState, StepResult, TrainStep
from .dygraph import check_accumulators, check_same_layout
from .spec import StepSpec
from .static_mode import onednn_enabled, static_onednn
from .static_program import (
    TensorSlot,
    append_optimizer_step,
    apply_gradients,
    bind_static,
    capture_slots,
    gradients,
    persistable_names,
    persistable_var,
    trainable_params,
    write_vars,
)
from .static_rewrites import constants_as_variables, linears_on_rows, training_rewrites
from .static_state import load_into_scope, state_from_scope

EMA_SUFFIX = "@EMA"
GRAD_SUFFIX = "@ACCUM"


@dataclass
class _Program:
    main: paddle.static.Program
    fetch: List[paddle.pir.Value]
    feed: Optional[paddle.pir.Value] = None
    ran: bool = False


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
        keep_freed_host_memory()  # every step frees and re-allocates the same large buffers
        paddle.seed(spec.seed)
        with paddle.utils.unique_name.guard():
            self._layer = spec.model_factory()
        self._slots, initial = capture_slots(self._layer)
        self._names = {s.key: s.name for s in self._slots if s.key}
        self._ema_names = {s.name: s.name + EMA_SUFFIX for s in self._slots if s.key and s.dtype.startswith("float")}
        # variables of the parameters outside the classifier head (frozen by set_backbone_frozen)
        self._backbone = {s.name for s in self._slots if s.is_param and s.key and not is_head(s.key, spec.head)}
        self._param_shapes = {s.name: list(s.shape) for s in self._slots if s.is_param}
        self._scheduler = spec.scheduler_factory()
        self._scope = paddle.static.Scope()
        self._place = paddle.CPUPlace()
        self._exe = paddle.static.Executor(self._place)
        self._threads = spec.num_threads or available_cores()
        self._programs: Dict[tuple, _Program] = {}
        self._eval: Optional[_Program] = None
        self._ema: Optional[_Program] = None
        self._opt_names: Dict[str, None] = {}  # every optimizer accumulator of every program, in order
        self._constants: Dict[str, np.ndarray] = {}  # arrays a forward made into variables (constants_as_variables)
        self._grad_names: Dict[str, str] = {}  # parameter variable -> its gradient buffer
        self._accumulating = spec.accum_steps > 1
        self._frozen = False
        mixing = any(a in spec.recipe.augment for a in ("mixup", "cutmix"))
        for frozen in (False, True) if spec.freeze_epochs else (False,):
            if self._accumulating:
                self._program("apply", frozen=frozen)
                self._program("grad", mixing, frozen)
            else:
                self._program("train", mixing, frozen)
        write_vars(self._scope, {s.name: initial[s.name] for s in self._slots}, self._place)
        if spec.recipe.ema_decay:
            self._ema = self._build_ema(spec.recipe.ema_decay)
            write_vars(self._scope, {e: initial[n] for n, e in self._ema_names.items()}, self._place)

    # ---- programs -------------------------------------------------------------------------------------------

    def _program(self, kind: str, soft: bool = False, frozen: bool = False) -> _Program:
        key = (kind, soft, frozen)
        if key not in self._programs:
            build = {"train": self._build_train, "grad": self._build_grad, "apply": self._build_apply}[kind]
            self._programs[key] = build(soft, frozen)
        return self._programs[key]

    @contextlib.contextmanager
    def _building(self, frozen: bool) -> Iterator[Tuple[paddle.static.Program, paddle.static.Program, list]]:
        """Static mode, a fresh program pair and name scope, the Layer's slots bound to static variables, and the
        Layer in training mode. With ``frozen``: the backbone's parameters not trainable and its BatchNorm layers
        in inference mode (they keep their statistics), as the dygraph engine freezes them.

        Yields the programs and a list that receives the classifier head's inputs of a frozen program: their
        gradients must be asked for too (and dropped), because oneDNN's matmul gradient kernel crashes when it is
        to give only the weight's gradient (SIGSEGV in Paddle 3.3).
        """
        main, startup = paddle.static.Program(), paddle.static.Program()
        head_inputs: list = []
        handles = []
        self._layer.train()
        if frozen:
            for name, layer in self._layer.named_sublayers():
                if isinstance(layer, paddle.nn.layer.norm._BatchNormBase) and not is_head(name, self.spec.head):
                    layer.eval()
            head = dict(self._layer.named_sublayers()).get(self.spec.head)
            if head is not None:
                handles.append(head.register_forward_pre_hook(_differentiable_input(head_inputs)))
        with quiet_static_build():
            try:
                with static_onednn(), paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard(), \
                        constants_as_variables(self._constants):
                    bind_static(self._slots, self._backbone if frozen else ())
                    yield main, startup, head_inputs
            finally:
                for h in handles:
                    h.remove()
                self._layer.train()
            self._create_vars(main, startup)

    def _forward_loss(self, soft: bool) -> Tuple[paddle.pir.Value, paddle.pir.Value]:
        spec, size = self.spec, self.spec.image_size
        x = paddle.static.data("x", [-1, 3, size, size], "float32")
        y = paddle.static.data("y", [-1, 1], "int64")
        t = paddle.static.data("t", [-1, spec.num_classes], "float32") if soft else None
        with training_rewrites(self._layer, onednn=onednn_enabled()):
            logits = self._layer(x)
        weights = paddle.to_tensor(spec.class_weights, dtype="float32") if spec.class_weights is not None else None
        return classification_loss(logits, y, spec.num_classes, spec.recipe.label_smoothing, t, weights), logits

    def _optimizer(self) -> paddle.optimizer.Optimizer:
        spec = self.spec
        return build_optimizer(self._layer, spec.recipe, self._scheduler, spec.head, spec.backbone_lr_scale)

    def _build_train(self, soft: bool, frozen: bool) -> _Program:
        """Forward, loss, backward and update of one batch."""
        with self._building(frozen) as (main, startup, head_inputs):
            loss, logits = self._forward_loss(soft)
            optimizer = self._optimizer()
            append_optimizer_step(optimizer, loss, startup, head_inputs)
            self._opt_names.update(dict.fromkeys(optimizer._opti_name_list))
        return _Program(main, [loss, logits])

    def _build_grad(self, soft: bool, frozen: bool) -> _Program:
        """Forward, loss and backward of one batch of a group; ``buffer = keep * buffer + share * gradient``
        (``keep`` 0 for a group's first batch, ``share`` its part of the group's samples)."""
        with self._building(frozen) as (main, _, head_inputs):
            loss, logits = self._forward_loss(soft)
            share = paddle.static.data("share", [1], "float32")
            keep = paddle.static.data("keep", [1], "float32")
            params = [p for p in main.global_block().all_parameters() if not p.stop_gradient]
            # a 0-D share: oneDNN's gradient of the 0-D loss times a [1] tensor fails
            for p, g in gradients(loss * share.reshape([]), params, head_inputs):
                buffer = persistable_var(self._grad_buffer(p.name), tuple(p.shape), "float32")
                # through a plain-layout copy: oneDNN's elementwise ops fail on a blocked-layout gradient
                paddle.assign(buffer * keep + paddle.assign(g), output=buffer)
        return _Program(main, [loss, logits])

    def _build_apply(self, soft: bool, frozen: bool) -> _Program:
        """The optimizer update from the gradient buffers (clipping, weight decay, groups as in a training step)."""
        with self._building(frozen) as (main, startup, _):
            optimizer = self._optimizer()
            pairs = [(p, persistable_var(self._grad_buffer(p.name), tuple(p.shape), "float32"))
                     for p in trainable_params(optimizer)]
            apply_gradients(optimizer, pairs, startup)
            self._opt_names.update(dict.fromkeys(optimizer._opti_name_list))
        return _Program(main, [])

    def _grad_buffer(self, param: str) -> str:
        return self._grad_names.setdefault(param, param + GRAD_SUFFIX)

    def _build_ema(self, decay: float) -> _Program:
        main, startup = paddle.static.Program(), paddle.static.Program()
        with quiet_static_build(), static_onednn(), paddle.static.program_guard(main, startup), \
                paddle.utils.unique_name.guard():
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
        with quiet_static_build():
            try:
                with static_onednn(), paddle.static.program_guard(main, startup), paddle.utils.unique_name.guard(), \
                        constants_as_variables(self._constants):
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
        one copy of weights and optimizer state: a later program running its own startup would reset them. The
        first program always holds the whole optimizer (unfrozen); gradient buffers start at zero.
        """
        if not self._programs:
            with static_onednn(self._scope, kernels=False):
                self._exe.run(startup, scope=self._scope)
            write_vars(self._scope, self._constants, self._place)
            return
        write_vars(self._scope, {n: a for n, a in self._constants.items() if self._scope.find_var(n) is None},
                   self._place)
        buffers = set(self._grad_names.values())
        missing = [n for n in persistable_names(main) if self._scope.find_var(n) is None]
        write_vars(self._scope, {n: np.zeros(self._param_shapes[n[:-len(GRAD_SUFFIX)]], np.float32)
                                 for n in missing if n in buffers}, self._place)
        missing = [n for n in missing if n not in buffers]
        assert not missing, f"a later program would not share variables {missing[:5]}: the engine has a bug"

    def _run(self, program: _Program, feed: Dict[str, np.ndarray]) -> List[np.ndarray]:
        # a program's first run prints the executor's and oneDNN's start-up glog lines (once per process)
        first = not program.ran
        program.ran = True
        with static_onednn(self._scope), quiet_static_build() if first else contextlib.nullcontext():
            try:
                return self._exe.run(program.main, feed=feed, fetch_list=program.fetch, scope=self._scope)
            except (RuntimeError, ValueError) as e:  # a kernel's failure, as Paddle reports it (often std::exception)
                shape = f" on a batch of shape {list(feed['x'].shape)}" if "x" in feed else ""
                raise RuntimeFailure(f"the static engine failed{shape}: {type(e).__name__}: {first_line(e)}",
                                     "train with -o Train.engine=dygraph; checkpoints saved so far resume on it"
                                     ) from None

    # ---- TrainStep ------------------------------------------------------------------------------------------

    def train_batch(self, images: np.ndarray, labels: np.ndarray,
                    targets: Optional[np.ndarray] = None) -> StepResult:
        return self.train_group([(images, labels, targets)])

    def train_group(self, batches: Sequence[Batch]) -> StepResult:
        """One optimizer step: one training program for a single batch; with ``Train.accum_steps`` > 1 (or a
        group of several batches) gradient programs batch by batch, then the update program."""
        total = sum(len(b[1]) for b in batches)
        loss_sum = correct = 0.0
        if len(batches) == 1 and not self._accumulating:
            images, labels, targets = batches[0]
            program = self._program("train", targets is not None, self._frozen)
            loss_sum, correct = self._run_batch(program, images, labels, targets, {})
        else:
            for k, (images, labels, targets) in enumerate(batches):
                program = self._program("grad", targets is not None, self._frozen)
                extra = {"share": np.array([len(labels) / total], np.float32),
                         "keep": np.array([1.0 if k else 0.0], np.float32)}
                loss, hits = self._run_batch(program, images, labels, targets, extra)
                loss_sum, correct = loss_sum + loss, correct + hits
            self._run(self._program("apply", frozen=self._frozen), {})
        self._scheduler.step()
        if self._ema is not None:
            self._run(self._ema, {})
        return StepResult(loss=loss_sum / total, top1=correct / total)

    def _run_batch(self, program: _Program, images: np.ndarray, labels: np.ndarray, targets: Optional[np.ndarray],
                   extra: Dict[str, np.ndarray]) -> Tuple[float, float]:
        """The batch's loss times its size and its number of top-1 hits.

        A batch of one sample runs as two copies of it: oneDNN's ``add_grad`` fails on a batch of one (Paddle 3.3,
        PP-LCNet_x0_25 at 32 px: ``dnnl::error`` in the backward pass, with an open or a fixed batch dimension),
        and an epoch's last batch is a single sample whenever the data is one more than a multiple of the batch
        size. Two copies give the same mean loss, the same gradients and the same BatchNorm statistics (mean and
        biased variance over a set do not change when every element is repeated); only dropout draws a mask per
        copy.
        """
        size = len(labels)
        labels = np.asarray(labels, dtype=np.int64).reshape(-1, 1)
        images = np.asarray(images, dtype=np.float32)
        if size == 1:
            images, labels = np.concatenate([images, images]), np.concatenate([labels, labels])
            targets = None if targets is None else np.concatenate([targets, targets])
        feed = {"x": images, "y": labels, **extra}
        if targets is not None:
            feed["t"] = np.asarray(targets, dtype=np.float32)
        loss, logits = self._run(program, feed)
        hits = float((np.asarray(logits)[:size].argmax(axis=-1) == labels[:size, 0]).sum())
        return float(np.asarray(loss).item()) * size, hits

    def set_backbone_frozen(self, frozen: bool) -> None:
        self._frozen = frozen

    @property
    def lr(self) -> float:
        return float(self._scheduler.last_lr)

    def state(self, lazy: bool = False) -> EngineState:
        return state_from_scope(self._scope, self._names, list(self._opt_names), self._scheduler,
                                self._ema_names if self._ema is not None else None, lazy)

    def load_state(self, state: EngineState) -> None:
        """Restore a checkpoint of either engine; like the dygraph engine, the weights must be exactly this
        model's and every optimizer accumulator must belong to one of its parameters."""
        check_same_layout({s.key: _Shaped(s.shape) for s in self._slots if s.key}, state.model, "weights")
        if state.optimizer is not None:
            check_accumulators(self._param_shapes, state.optimizer)
        load_into_scope(self._scope, self._place, state, self._names, list(self._opt_names), self._scheduler,
                        self._ema_names if self._ema is not None else None)

    def eval_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        """The evaluation program (EMA weights when EMA is on) saved and run by the oneDNN inference predictor,
        which fuses it: several times faster than running it with the executor."""
        if self._eval is None:
            self._eval = self._build_eval()
        release_freed_host_memory()  # once an epoch; before the fork, so the child starts smaller too
        return program_forward(self._eval.main, self._eval.feed, self._eval.fetch[0], self._scope, self._threads)

    def close(self) -> None:
        self._programs.clear()
        self._eval = self._ema = None
        if self._scope is None:
            return
        # the executor's cached interpreters point into the scope: drop them first
        self._exe._executor_cache.clear()
        self._exe._executor_cache._get_cached_program_and_executor_pir_mode.cache_clear()
        self._exe.close()
        # paddle.static.Scope() lives in Paddle's global scope pool until removed from it: without this every
        # engine built in a process kept its weights, gradients and optimizer state (measured: ResNet18 at 64 px,
        # about 150 MB more resident per engine built and closed; a run over many models ran out of memory)
        self._scope._remove_from_pool()
        self._scope = None


def _differentiable_input(found: list) -> Callable:
    """A forward pre-hook giving a sublayer a copy of its first input that asks for a gradient (kept in ``found``)."""

    def hook(layer, inputs):
        copy = paddle.assign(inputs[0])
        copy.stop_gradient = False
        found.append(copy)
        return (copy,) + tuple(inputs[1:])

    return hook


@dataclass(frozen=True)
class _Shaped:
    """Stands for a tensor where only its shape is compared."""

    shape: Tuple[int, ...]


def _renamed(slots: List[TensorSlot], names: Dict[str, str]) -> List[TensorSlot]:
    """The slots bound to other variables (the EMA copies) where ``names`` says so."""
    return [replace(s, name=names.get(s.name, s.name)) for s in slots]
