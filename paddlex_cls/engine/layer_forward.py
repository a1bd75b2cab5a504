"""A dygraph Layer as a batch -> logits function (what the evaluator takes)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import paddle


def layer_forward(model: paddle.nn.Layer) -> Callable[[np.ndarray], np.ndarray]:
    """``model`` in eval mode, without gradients, on numpy batches."""
    model.eval()

    def forward(images: np.ndarray) -> np.ndarray:
        with paddle.no_grad():
            return model(paddle.to_tensor(images)).numpy()
    return forward
