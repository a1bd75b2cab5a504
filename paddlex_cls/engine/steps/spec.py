"""What the training loop hands an engine to build itself: plain values and factories, no built objects."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from ...device import Device
from ...models.registry import Recipe


@dataclass(frozen=True)
class StepSpec:
    """Everything an engine needs to build its model, optimizer, schedule and loss.

    Attributes:
        model_factory: builds the model Layer (an engine may build it in its own graph mode).
        recipe: the resolved training recipe (optimizer, weight decay, clipping, EMA, label smoothing...).
        scheduler_factory: builds the LR scheduler (stepped once per iteration).
        num_classes: classifier outputs.
        batch_size: images per step on this process.
        image_size: side of the square training input.
        seed: the run's seed.
        device: the training device of this process.
        world_size: data-parallel processes (1 = single process).
        amp_level: ``O0`` (off), ``O1`` or ``O2`` (GPU only).
        dy2st: train the model converted to a static graph by ``paddle.jit.to_static``.
        head: state-dict prefix of the classifier head (fine-tuning controls act on everything else).
        class_weights: loss weight per class, or None.
        backbone_lr_scale: LR multiplier of every parameter outside the head.
        freeze_epochs: epochs at the start with a frozen backbone (0 = never frozen).
        accum_steps: batches per optimizer step (``Train.accum_steps``; ``train_group`` gets that many).
        num_threads: CPU math threads of this process (None: every core it may use).
    """

    model_factory: Callable
    recipe: Recipe
    scheduler_factory: Callable
    num_classes: int
    batch_size: int
    image_size: int
    seed: int
    device: Device
    world_size: int = 1
    amp_level: str = "O0"
    dy2st: bool = False
    head: str = ""
    class_weights: Optional[np.ndarray] = None
    backbone_lr_scale: float = 1.0
    freeze_epochs: int = 0
    accum_steps: int = 1
    num_threads: Optional[int] = None
