"""Optimizer and learning-rate schedule from the model's recipe and the Train section.

Schedule: linear warmup over ``Train.warmup_steps`` EPOCHS (PaddleX's name, PaddleX's meaning), then cosine decay
to 0 over the remaining epochs, stepped every iteration.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Set, Tuple

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

    def state_dict(self) -> dict:
        state = super().state_dict()
        state["warmup_steps"] = self.warmup_steps
        return state

    def set_state_dict(self, state_dict: dict) -> None:
        """Restore the step count and the saved run's warmup length; the LR is recomputed on this schedule.

        The warmup belongs to the start of training: a resumed run asked for more epochs would otherwise get a
        longer warmup (it is counted in epochs, capped by the run's length) and drop its LR to climb again."""
        state = dict(state_dict)
        saved_warmup = state.pop("warmup_steps", None)  # absent from checkpoints of earlier versions
        super().set_state_dict(state)
        if saved_warmup is not None:
            self.warmup_steps = min(int(saved_warmup), self.total_steps)
        self.last_lr = self.get_lr()


def build_scheduler(lr: float, epochs: int, iters_per_epoch: int, warmup_epochs: int) -> WarmupCosine:
    """Warmup over ``warmup_epochs`` EPOCHS (PaddleX's meaning of Train.warmup_steps), cosine over the rest."""
    return WarmupCosine(lr, epochs * iters_per_epoch, min(warmup_epochs, epochs) * iters_per_epoch)


def warmup_warning(lr: float, epochs: int, warmup_epochs: int) -> Optional[str]:
    """What to tell a user whose warmup (PaddleX's default is 5 epochs) is the whole run: the learning rate then
    climbs from 0 and never reaches ``lr`` or decays, which a short fine-tuning run rarely means."""
    if warmup_epochs <= 0 or warmup_epochs < epochs:
        return None
    return (f"Train.warmup_steps={warmup_epochs} (epochs of warmup) covers the whole run of {epochs} epoch(s): the "
            f"learning rate climbs from 0 toward {lr:g} until the last step and never decays. Set -o "
            f"Train.warmup_steps to fewer epochs than Train.epochs_iters (0 for no warmup) if that is not meant")


def no_decay_names(model: paddle.nn.Layer, recipe: Recipe) -> Set[str]:
    """Structured names of the parameters without weight decay: those the model lists in ``no_weight_decay()``
    (position tables, tokens), plus every 1-D parameter (norms, biases, scales) where the recipe says
    ``no_decay_norm_bias``."""
    listed = getattr(model, "no_weight_decay", None)
    names = set(listed()) if callable(listed) else set()
    if recipe.no_decay_norm_bias:
        names |= {n for n, p in model.named_parameters() if p.ndim <= 1}
    return names


def _apply_layer_decay(model: paddle.nn.Layer, decay: float) -> None:
    """Scale each parameter's LR by decay ** (num_layers + 1 - layer_id) (ViT fine-tuning recipe)."""
    layer_id_of = getattr(model, "layer_id_of", None)
    if layer_id_of is None:
        logger.warning("Train.layer_decay is set but %s has no layer ids; ignoring it", type(model).__name__)
        return
    num_layers = model.num_layers_for_decay
    for name, p in model.named_parameters():
        p.optimize_attr["learning_rate"] = decay ** (num_layers + 1 - layer_id_of(name))


def is_head(name: str, head: str) -> bool:
    """Whether the structured parameter name belongs to the classifier head ``head`` (a state-dict prefix)."""
    return bool(head) and (name == head or name.startswith(head + "."))


def _scale_backbone_lr(model: paddle.nn.Layer, head: str, scale: float) -> None:
    """Multiply the LR of every parameter outside the classifier head (on top of layer decay)."""
    for name, p in model.named_parameters():
        if not is_head(name, head):
            p.optimize_attr["learning_rate"] = p.optimize_attr.get("learning_rate", 1.0) * scale


def build_optimizer(model: paddle.nn.Layer, recipe: Recipe, scheduler, head: str = "",
                    backbone_lr_scale: float = 1.0) -> paddle.optimizer.Optimizer:
    """The recipe's optimizer over the model's trainable parameters (weight-decay groups, clipping, layer decay,
    and ``backbone_lr_scale`` on everything outside the classifier ``head``)."""
    params = [(n, p) for n, p in model.named_parameters() if not p.stop_gradient]
    clip = paddle.nn.ClipGradByGlobalNorm(recipe.grad_clip) if recipe.grad_clip else None
    if recipe.layer_decay:
        _apply_layer_decay(model, recipe.layer_decay)
    if backbone_lr_scale != 1.0:
        _scale_backbone_lr(model, head, backbone_lr_scale)
    no_decay = no_decay_names(model, recipe)
    if recipe.optimizer == "adamw":
        skip = {p.name for n, p in params if n in no_decay}
        return paddle.optimizer.AdamW(learning_rate=scheduler, parameters=[p for _, p in params],
                                      weight_decay=recipe.weight_decay, grad_clip=clip,
                                      apply_decay_param_fun=lambda pname: pname not in skip)
    if recipe.optimizer != "momentum":
        raise ConfigError(f"unknown optimizer {recipe.optimizer!r}", "use -o Train.optimizer=momentum or adamw")
    # Paddle's param groups reset each parameter's LR multiplier to the group's: one group per (decay, multiplier).
    grouped: Dict[Tuple[bool, float], List[Any]] = {}
    for n, p in params:
        grouped.setdefault((n in no_decay, p.optimize_attr.get("learning_rate", 1.0)), []).append(p)
    groups: List[Dict[str, Any]] = [{"params": ps, "learning_rate": mult, **({"weight_decay": 0.0} if skip else {})}
                                    for (skip, mult), ps in grouped.items()]
    return paddle.optimizer.Momentum(learning_rate=scheduler, momentum=0.9, parameters=groups,
                                     weight_decay=paddle.regularizer.L2Decay(recipe.weight_decay), grad_clip=clip)
