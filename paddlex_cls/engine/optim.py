"""Optimizer and learning-rate schedule from the model's recipe and the Train section.

Schedule: linear warmup over ``Train.warmup_steps`` EPOCHS (PaddleX's name, PaddleX's meaning), then cosine decay
to 0 over the remaining epochs, stepped every iteration.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List

import paddle

from ..data.augment import check_augment
from ..errors import ConfigError
from ..log import logger
from ..models.registry import Recipe

_RECIPE_KEYS = ("optimizer", "weight_decay", "label_smoothing", "ema_decay", "grad_clip", "layer_decay", "augment")


def resolve_recipe(train_cfg: Dict[str, Any], recipe: Recipe) -> Recipe:
    """The model's recipe with every non-null ``Train.<key>`` override applied (0 disables EMA / clipping)."""
    changes = {k: train_cfg[k] for k in _RECIPE_KEYS if train_cfg.get(k) is not None}
    if "augment" in changes:
        changes["augment"] = tuple(changes["augment"])
    for key in ("ema_decay", "grad_clip", "layer_decay"):
        if changes.get(key) == 0:
            changes[key] = None
    resolved = dataclasses.replace(recipe, **changes)
    check_augment(resolved.augment)  # the names (also the recipe's own); the schema checked every value's range
    return resolved


class WarmupCosine(paddle.optimizer.lr.LRScheduler):
    """Linear warmup from 0 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``; stepped per iteration.

    Closed form in the step count (Paddle's CosineAnnealingDecay is recursive in the last LR), so a resumed run
    that asks for more epochs continues on the new, longer schedule from the restored step.
    """

    def __init__(self, learning_rate: float, total_steps: int, warmup_steps: int = 0):
        self.total_steps = max(1, total_steps)
        self.warmup_steps = min(warmup_steps, self.total_steps)
        super().__init__(learning_rate)

    def get_lr(self) -> float:
        step = self.last_epoch
        if step < self.warmup_steps:
            return self.base_lr * step / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / max(1, self.total_steps - self.warmup_steps))
        return self.base_lr * 0.5 * (1.0 + math.cos(math.pi * progress))

    def set_state_dict(self, state_dict: dict) -> None:
        """Restore the step count; the LR is recomputed on this schedule, not taken from the saved run's."""
        super().set_state_dict(state_dict)
        self.last_lr = self.get_lr()


def build_scheduler(lr: float, epochs: int, iters_per_epoch: int, warmup_epochs: int) -> WarmupCosine:
    """Warmup over ``warmup_epochs`` EPOCHS (PaddleX's meaning of Train.warmup_steps), cosine over the rest."""
    return WarmupCosine(lr, epochs * iters_per_epoch, min(warmup_epochs, epochs) * iters_per_epoch)


def _no_decay(name: str, param) -> bool:
    """Norm weights, biases, scales and position/relative tables (all 1-D or tables) get no weight decay."""
    return param.ndim <= 1 or any(t in name for t in ("pos_embed", "position", "cls_token", "relative_position"))


def _apply_layer_decay(model: paddle.nn.Layer, decay: float) -> None:
    """Scale each parameter's LR by decay ** (num_layers + 1 - layer_id) (ViT fine-tuning recipe)."""
    layer_id_of = getattr(model, "layer_id_of", None)
    if layer_id_of is None:
        logger.warning("Train.layer_decay is set but %s has no layer ids; ignoring it", type(model).__name__)
        return
    num_layers = model.num_layers_for_decay
    for name, p in model.named_parameters():
        p.optimize_attr["learning_rate"] = decay ** (num_layers + 1 - layer_id_of(name))


def build_optimizer(model: paddle.nn.Layer, recipe: Recipe, scheduler) -> paddle.optimizer.Optimizer:
    params = [(n, p) for n, p in model.named_parameters() if not p.stop_gradient]
    clip = paddle.nn.ClipGradByGlobalNorm(recipe.grad_clip) if recipe.grad_clip else None
    if recipe.layer_decay:
        _apply_layer_decay(model, recipe.layer_decay)
    if recipe.optimizer == "adamw":
        skip = {p.name for n, p in params if recipe.no_decay_norm_bias and _no_decay(n, p)}
        return paddle.optimizer.AdamW(learning_rate=scheduler, parameters=[p for _, p in params],
                                      weight_decay=recipe.weight_decay, grad_clip=clip,
                                      apply_decay_param_fun=lambda pname: pname not in skip)
    if recipe.optimizer != "momentum":
        raise ConfigError(f"unknown optimizer {recipe.optimizer!r}", "use -o Train.optimizer=momentum or adamw")
    groups: List[Dict[str, Any]] = [{"params": [p for n, p in params
                                                if not (recipe.no_decay_norm_bias and _no_decay(n, p))]}]
    if recipe.no_decay_norm_bias:
        groups.append({"params": [p for n, p in params if _no_decay(n, p)], "weight_decay": 0.0})
    groups = [g for g in groups if g["params"]]
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=0.9, parameters=groups,
                                     weight_decay=paddle.regularizer.L2Decay(recipe.weight_decay), grad_clip=clip)
