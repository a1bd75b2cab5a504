"""The dygraph engine: the model Layer trained eagerly, as PaddleClas does; the path for GPU, multi-card and AMP."""
from __future__ import annotations

from typing import Any, Callable, Dict, Optional

import numpy as np
import paddle
from paddle.base import unique_name

from ...errors import WeightsError
from ..ema import ModelEMA
from ..layer_forward import layer_forward
from ..loss import classification_loss
from ..optim import build_optimizer
from .base import EngineState, StepResult, TrainStep
from .spec import StepSpec


def _to_numpy(state: Dict[str, Any]) -> Dict[str, Any]:
    return {k: v.numpy() if isinstance(v, paddle.Tensor) else v for k, v in state.items()}


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
    shapes = {p.name: list(p.shape) for p in model.parameters()}
    for key, value in state.items():
        if not isinstance(value, (np.ndarray, paddle.Tensor)):
            continue  # LR_Scheduler, master_weights: plain values checked by their owners
        owner = max((n for n in shapes if key.startswith(n + "_")), key=len, default=None)
        shape = list(np.shape(value))
        if owner is None or (shape != shapes[owner] and int(np.prod(shape)) != 1):
            raise WeightsError(f"the checkpoint's optimizer state ({key}, shape {shape}) does not belong to this "
                               "model's parameters", "resume with the .pdopt written beside the same .pdparams")


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
            self.optimizer = build_optimizer(self.model, spec.recipe, self.scheduler)
        self.ema = ModelEMA(self.model, spec.recipe.ema_decay) if spec.recipe.ema_decay else None
        self.amp_level = spec.amp_level
        self.scaler = paddle.amp.GradScaler(init_loss_scaling=1024) if self.amp_level != "O0" else None
        if self.amp_level == "O2":  # pure fp16 weights with fp32 master copies kept by the optimizer
            self.model, self.optimizer = paddle.amp.decorate(models=self.model, optimizers=self.optimizer,
                                                             level="O2")
        self.net = paddle.DataParallel(self.model) if spec.world_size > 1 else self.model
        if spec.dy2st:
            self.net = paddle.jit.to_static(self.net)
        self._eval_model: Optional[paddle.nn.Layer] = None
        self._in_eval = False

    def train_batch(self, images: np.ndarray, labels: np.ndarray,
                    targets: Optional[np.ndarray] = None) -> StepResult:
        if self._in_eval:
            self.net.train()
            self._in_eval = False
        x, y = paddle.to_tensor(images), paddle.to_tensor(labels)
        soft = paddle.to_tensor(targets) if targets is not None else None
        with unique_name.guard(self._names):
            with paddle.amp.auto_cast(enable=self.amp_level != "O0", level=self.amp_level):
                logits = self.net(x)
                loss = classification_loss(logits, y, self.spec.num_classes, self.spec.recipe.label_smoothing,
                                           soft)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.minimize(self.optimizer, loss)
            else:
                loss.backward()
                self.optimizer.step()
            self.optimizer.clear_grad()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        top1 = float((logits.argmax(axis=-1) == y.reshape([-1])).astype("float32").mean().item())
        return StepResult(float(loss.item()), top1)

    @property
    def lr(self) -> float:
        return float(self.optimizer.get_lr())

    def state(self) -> EngineState:
        ema = _to_numpy(self.ema.state_dict()) if self.ema is not None else None
        return EngineState(_to_numpy(self.model.state_dict()), _to_numpy(self.optimizer.state_dict()), ema)

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
        self._in_eval = True
        return layer_forward(model)
