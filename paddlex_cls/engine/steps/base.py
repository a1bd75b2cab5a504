"""The interface between the training loop and a training engine.

The loop (``engine/loop.py``) owns epochs, data, evaluation schedule, checkpoints, logs and result files. A step
engine owns how one batch updates the weights and where the weights live (a dygraph ``Layer``, or the scope of a
static program). The loop talks to an engine only through this interface, so a new engine is a new class in
``ENGINES`` (``engine/steps/__init__.py``), never an ``if engine == ...`` in the loop.

All data crossing the interface is numpy: batches in, floats and state dicts out. State dicts use the ``Layer``'s
own ``state_dict()`` keys, and optimizer state uses the dygraph ``optimizer.state_dict()`` format, so a checkpoint
written by one engine resumes on the other.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Sequence, Tuple

import numpy as np

StateDict = Dict[str, np.ndarray]
Batch = Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]  # images, labels, soft targets (or None)


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step reports: the mean loss and top-1 accuracy of its batch (before the update)."""

    loss: float
    top1: float


class LazyArray:
    """A tensor's value, copied out when it is used (``np.asarray``, pickling) and not kept.

    Checkpoints are written from these, tensor by tensor, so saving holds one tensor's copy at a time instead of a
    copy of the whole state (for AdamW, three times the weights).
    """

    __slots__ = ("_read",)

    def __init__(self, read: Callable[[], np.ndarray]):
        self._read = read

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        value = self._read()
        return value if dtype is None else value.astype(dtype, copy=False)

    def __reduce_ex__(self, protocol):
        # pickled exactly as the array it stands for: the file does not know it was lazy
        return self._read().__reduce_ex__(protocol)


@dataclass
class EngineState:
    """Everything a checkpoint holds of an engine: weights, optimizer (with its LR scheduler), EMA weights."""

    model: StateDict
    optimizer: Optional[Dict[str, Any]] = None
    ema: Optional[StateDict] = None


class TrainStep(abc.ABC):
    """One training engine. Built once per run by the loop from a :class:`StepSpec`."""

    #: the engine's name as ``Train.engine`` spells it, and as logs and docs/models.md show it
    name: str = ""

    @abc.abstractmethod
    def train_batch(self, images: np.ndarray, labels: np.ndarray,
                    targets: Optional[np.ndarray] = None) -> StepResult:
        """One optimizer step: forward, loss, backward, update, LR schedule step, EMA update.

        Args:
            images: float32 NCHW batch.
            labels: int64 class ids, shape [N].
            targets: float32 soft targets [N, num_classes] (mixup/cutmix), or None for hard labels.
        """

    def train_group(self, batches: Sequence[Batch]) -> StepResult:
        """One optimizer step from several batches (``Train.accum_steps``), equal to one step on their union.

        This default trains on the concatenated batches, which is exactly that (BatchNorm then sees the union);
        an engine that must bound memory (a GPU) accumulates gradients batch by batch instead.
        """
        if len(batches) == 1:
            return self.train_batch(*batches[0])
        images = np.concatenate([b[0] for b in batches])
        labels = np.concatenate([b[1] for b in batches])
        soft = [b[2] for b in batches]
        return self.train_batch(images, labels, None if soft[0] is None else np.concatenate(soft))

    @abc.abstractmethod
    def set_backbone_frozen(self, frozen: bool) -> None:
        """While frozen, only the classifier head trains: every other weight and BatchNorm statistic stays as it is
        (``Train.freeze_backbone``)."""

    @property
    @abc.abstractmethod
    def lr(self) -> float:
        """The learning rate the next ``train_batch`` uses."""

    @abc.abstractmethod
    def state(self, lazy: bool = False) -> EngineState:
        """A copy of the current weights, optimizer state and EMA weights (numpy, Layer keys).

        With ``lazy`` every tensor is a :class:`LazyArray` instead, copied when used: for writing a checkpoint
        before the next step, never to keep.
        """

    @abc.abstractmethod
    def load_state(self, state: EngineState) -> None:
        """Restore weights (and optimizer/EMA state when given) from a checkpoint of either engine."""

    @abc.abstractmethod
    def eval_forward(self) -> Callable[[np.ndarray], np.ndarray]:
        """A function from a float32 NCHW batch to logits [N, C] with the weights that would be exported (the
        EMA weights when EMA is on), in eval mode. Valid until the next ``train_batch``."""

    def close(self) -> None:
        """Release what the engine holds (programs, scopes, threads). Called once at the end of a run."""
        return None
