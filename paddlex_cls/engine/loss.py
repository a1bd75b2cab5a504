"""The training loss, written with ops that run in dygraph and in static programs alike."""
from __future__ import annotations

from typing import Optional

import paddle
import paddle.nn.functional as F


def classification_loss(logits: paddle.Tensor, labels: paddle.Tensor, num_classes: int, label_smoothing: float = 0.0,
                        targets: Optional[paddle.Tensor] = None,
                        class_weights: Optional[paddle.Tensor] = None) -> paddle.Tensor:
    """Cross entropy against hard labels, soft targets (mixup/cutmix), or either smoothed by ``label_smoothing``.

    Args:
        logits: [N, C] scores.
        labels: [N] or [N, 1] int64 class ids (used when ``targets`` is None).
        targets: [N, C] soft targets summing to 1 per row.
        class_weights: [C] loss weight per class; a sample weighs its target's expected class weight (its own
            class's weight for hard labels), and the loss is the weighted mean of the sample losses (sum of weighted
            losses over the sum of weights, as PyTorch's weighted cross entropy), so every batch keeps the scale of
            an unweighted one.
    """
    if targets is None and not label_smoothing and class_weights is None:
        return F.cross_entropy(logits, labels.reshape([-1, 1]))
    target = targets if targets is not None else F.one_hot(labels.reshape([-1]), num_classes)
    per_sample_weight = None
    if class_weights is not None:
        per_sample_weight = (target * class_weights.reshape([1, -1])).sum(axis=-1)
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / num_classes
    loss = (-target * F.log_softmax(logits, axis=-1)).sum(axis=-1)
    if per_sample_weight is not None:
        return (loss * per_sample_weight).sum() / per_sample_weight.sum()
    return loss.mean()
