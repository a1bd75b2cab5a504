"""Exponential moving average of a model's weights (evaluated, saved as .pdema, and exported when enabled)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Dict

import paddle


class ModelEMA:
    """Keeps ``ema = decay * ema + (1 - decay) * weights`` for every float entry of the state dict."""

    def __init__(self, model: paddle.nn.Layer, decay: float):
        self.decay = decay
        self.model = model
        self.state: Dict[str, paddle.Tensor] = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @paddle.no_grad()
    def update(self) -> None:
        for k, v in self.model.state_dict().items():
            if paddle.is_floating_point(v):
                self.state[k].set_value(self.decay * self.state[k] + (1.0 - self.decay) * v.detach())
            else:
                self.state[k].set_value(v)

    def state_dict(self) -> Dict[str, paddle.Tensor]:
        return self.state

    def set_state_dict(self, state: Dict[str, paddle.Tensor]) -> None:
        for k, v in state.items():
            if k in self.state:
                self.state[k].set_value(paddle.to_tensor(v))

    @contextmanager
    def applied(self):
        """Temporarily load the EMA weights into the model (for evaluation or export)."""
        backup = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.model.set_state_dict(self.state)
        try:
            yield self.model
        finally:
            self.model.set_state_dict(backup)
