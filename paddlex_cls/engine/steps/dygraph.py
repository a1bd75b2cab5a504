"""The dygraph engine: the model Layer trained eagerly, as PaddleClas does; the path for GPU, multi-card and AMP."""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
from paddle.base import unique_name

from ...errors import RuntimeFailure, WeightsError
from ...runtime import available_cores
from ..ema import ModelEMA
from ..fast_eval import onednn_forward
from ..layer_forward import layer_forward
from ..loss import classification_loss
from ..optim import build_optimizer, is_head
from .base import Batch, EngineState, LazyArray, StepResult, TrainStep
from .eval_path import FasterEvalPath, Forward
from .forked import ForkedArrayFunction, can_serve_forked
from .spec import StepSpec


def _to_numpy(state: Dict[str, Any], lazy: bool = False) -> Dict[str, Any]:
    """Tensors as numpy copies, or as LazyArrays copied when used."""
    return {k: (LazyArray(v.numpy) if lazy else v.numpy()) if isinstance(v, paddle.Tensor) else v
            for k, v in state.items()}


def check_same_layout(own: Dict[str, Any], loaded: Dict[str, Any], what: str) -> None:
    """Resume needs exactly this model's keys and shapes; anything else is another model's checkpoint."""
    bad = [k for k in own if k not in loaded or list(np.shape(loaded[k])) != list(own[k].shape)]
    bad += [k for k in loaded if k not in own]
    if bad:
        raise WeightsError(f"the checkpoint's {what} do not fit this model ({len(bad)} key(s) missing, extra or "
                           f"mis-shaped, e.g. {', '.join(bad[:3])})", "resume from a checkpoint of the same model, "
                           "classes and settings (its config.yaml is beside it)")


def check_optimizer_state(model: paddle.nn.Layer, state: Dict[str, Any]) -> None:
    """Every accumulator of a .pdopt must belong to a parameter of this model with that parameter's shape (or be
    a scalar such as Adam's beta powers); Paddle would otherwise drop it silently and restart the optimizer."""
    check_accumulators({p.name: list(p.shape) for p in model.parameters()}, state)


def check_accumulators(shapes: Dict[str, List[int]], state: Dict[str, Any]) -> None:
    """:func:`check_optimizer_state` against the shapes of the parameters by variable name (any engine)."""
    for key, value in state.items():
        if not isinstance(value, (np.ndarray, paddle.Tensor)):
            continue  # LR_Scheduler, master_weights: plain values checked by their owners
        owner = max((n for n in shapes if key.startswith(n + "_")), key=len, default=None)
        shape = list(np.shape(value))
        if owner is None or (shape != shapes[owner] and int(np.prod(shape)) != 1):
            raise WeightsError(f"the checkpoint's optimizer state ({key}, shape {shape}) does not belong to this "
                               "model's parameters", "resume with the .pdopt written beside the same .pdparams")


OUT_OF_MEMORY = ("out of memory", "resourceexhausted", "resource exhausted")


def out_of_memory_error(error: BaseException, batch_size: int, accum_steps: int) -> Optional[RuntimeFailure]:
    """A clear error for a device out-of-memory failure (None for any other error)."""
    text = f"{type(error).__name__}: {error}".lower()
    if not isinstance(error, MemoryError) and not any(needle in text for needle in OUT_OF_MEMORY):
        return None
    smaller = max(1, batch_size // 2)
    return RuntimeFailure(f"the device ran out of memory at Train.batch_size={batch_size}",
                          f"use a smaller batch and accumulate to keep the effective batch size, e.g. "
                          f"-o Train.batch_size={smaller} -o Train.accum_steps={accum_steps * batch_size // smaller}")


class DygraphStep(TrainStep):
    """Forward/backward/update on a ``paddle.nn.Layer`` (DataParallel across processes, AMP on GPU)."""

    name = "dygraph"

    def __init__(self, spec: StepSpec):
        self.spec = spec
        # Parameter and optimizer-accumulator names come from Paddle's process-global name counter; a private
        # generator keeps them identical to those of a checkpoint written by another process (resume).
        self._names = unique_name.UniqueNameGenerator()
        with unique_name.guard(self._names):
            self.model = spec.model_factory()
            self.scheduler = spec.scheduler_factory()
            self.optimizer = build_optimizer(self.model, spec.recipe, self.scheduler, spec.head,
                                             spec.backbone_lr_scale)
        self.ema = ModelEMA(self.model, spec.recipe.ema_decay) if spec.recipe.ema_decay else None
        self.amp_level = spec.amp_level
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if self.amp_level != "O0" else None
        if self.amp_level == "O2":  # pure fp16 weights with fp32 master copies kept by the optimizer
            self.model, self.optimizer = paddle.amp.decorate(models=self.model, optimizers=self.optimizer,
                                                             level="O2")
        # Freezing changes which parameters get gradients mid-run: DataParallel must then not expect all of them.
        self.net = (paddle.DataParallel(self.model, find_unused_parameters=spec.freeze_epochs > 0)
                    if spec.world_size > 1 else self.model)
        if spec.dy2st:
            self.net = paddle.jit.to_static(self.net)
        self.class_weights = (paddle.to_tensor(spec.class_weights, dtype="float32")
                              if spec.class_weights is not None else None)
        self._eval_model: Optional[paddle.nn.Layer] = None
        self._eval_path = FasterEvalPath()
        self._predictor_eval = spec.device.type == "cpu" and spec.world_size == 1 and can_serve_forked()
        self._frozen = False
        self._mode_stale = True  # train/eval modes must be (re)set before the next training step

    def _set_train_mode(self) -> None:
        self.net.train()
        if self._frozen:  # the backbone's BatchNorm keeps its statistics: it runs as in inference
            for name, layer in self.model.named_sublayers():
                if isinstance(layer, paddle.nn.layer.norm._BatchNormBase) and not is_head(name, self.spec.head):
                    layer.eval()
        self._mode_stale = False

    def set_backbone_frozen(self, frozen: bool) -> None:
        for name, param in self.model.named_parameters():
            if not is_head(name, self.spec.head):
                param.stop_gradient = frozen
        self._frozen = frozen
        self._mode_stale = True

    def train_batch(self, images: np.ndarray, labels: np.ndarray,
                    targets: Optional[np.ndarray] = None) -> StepResult:
        return self.train_group([(images, labels, targets)])

    def train_group(self, batches: Sequence[Batch]) -> StepResult:
        """Forward/backward batch by batch (each loss weighted by its share of the group, so the sum equals the
        group's mean loss), then one update: gradient accumulation that keeps only one batch on the device."""
        if self._mode_stale:
            self._set_train_mode()
        total = sum(len(b[1]) for b in batches)
        loss_sum = correct = 0.0
        try:
            for k, (images, labels, targets) in enumerate(batches):
                last = k == len(batches) - 1
                sync = contextlib.nullcontext() if last or not hasattr(self.net, "no_sync") else self.net.no_sync()
                with sync:
                    loss, hits = self._backward(images, labels, targets, len(labels) / total)
                loss_sum += loss * len(labels)
                correct += hits
            self._update()
        except Exception as e:  # noqa: BLE001  only a device OOM is turned into a user error; the rest re-raise
            oom = out_of_memory_error(e, self.spec.batch_size, len(batches))
            if oom is None:
                raise
            raise oom from None
        return StepResult(loss_sum / total, correct / total)

    def _backward(self, images: np.ndarray, labels: np.ndarray, targets: Optional[np.ndarray],
                  share: float) -> Tuple[float, float]:
        x, y = paddle.to_tensor(images), paddle.to_tensor(labels)
        soft = paddle.to_tensor(targets) if targets is not None else None
        with unique_name.guard(self._names):
            with paddle.amp.auto_cast(enable=self.amp_level != "O0", level=self.amp_level):
                logits = self.net(x)
                loss = classification_loss(logits, y, self.spec.num_classes, self.spec.recipe.label_smoothing,
                                           soft, self.class_weights)
            scaled = loss * share if share != 1.0 else loss
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        hits = float((logits.argmax(axis=-1) == y.reshape([-1])).astype("float32").sum().item())
        return float(loss.item()), hits

    def _update(self) -> None:
        with unique_name.guard(self._names):
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
            self.optimizer.clear_grad()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update()

    @property
    def lr(self) -> float:
        return float(self.optimizer.get_lr())

    def state(self, lazy: bool = False) -> EngineState:
        ema = _to_numpy(self.ema.state_dict(), lazy) if self.ema is not None else None
        return EngineState(_to_numpy(self.model.state_dict(), lazy), _to_numpy(self.optimizer.state_dict(), lazy),
                           ema)

    def load_state(self, state: EngineState) -> None:
        check_same_layout(self.model.state_dict(), state.model, "weights")
        if state.optimizer is not None:
            check_optimizer_state(self.model, state.optimizer)
        self.model.set_state_dict(state.model)
        with unique_name.guard(self._names):
            if state.optimizer is not None:
                self.optimizer.set_state_dict(state.optimizer)
        if self.ema is not None and state.ema is not None:
            self.ema.set_state_dict(state.ema)

    def eval_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        model = self.model
        if self.ema is not None:  # the EMA weights, in a second Layer, so training's weights stay untouched
            if self._eval_model is None:
                with unique_name.guard(unique_name.UniqueNameGenerator()):
                    self._eval_model = self.spec.model_factory()
            self._eval_model.set_state_dict(self.ema.state_dict())
            model = self._eval_model
        self._mode_stale = True
        ways = [("dygraph Layer", lambda: layer_forward(model))]
        if self._predictor_eval:
            size, threads = self.spec.image_size, self.spec.num_threads or available_cores()
            ways.append(("oneDNN predictor", lambda: _forked_predictor(model, size, threads)))
        return self._eval_path.forward(ways)


def _forked_predictor(model: paddle.nn.Layer, size: int, threads: int) -> Forward:
    """``model`` traced and run by the oneDNN predictor, all in a forked child (``fast_eval``): nothing of the
    tracing or the predictor stays in the training process."""
    return ForkedArrayFunction(lambda: onednn_forward(model, size, threads))
