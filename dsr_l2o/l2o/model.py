"""A coordinate-wise LSTM optimizer (Andrychowicz et al. 2016) with RNNprop's inputs (Lv et al. 2017).

Every parameter coordinate runs the same small LSTM (``layers`` x ``hidden`` units, shared
weights) on two preprocessed features, as RNNprop reads them:

.. math:: \\tilde m = \\hat m / (\\sqrt{\\hat v} + \\epsilon), \\qquad \\tilde g = g / (\\sqrt{\\hat v} + \\epsilon)

(Adam's debiased moving averages, betas 0.9 and 0.999), so the inputs are scale-free. The
direction is ``tanh(W h + b)``; the update is ``w <- w - lr * direction``. State per
coordinate: ``h`` and ``c`` of every layer (``2 * layers * hidden`` floats) plus ``m`` and ``v``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

BETAS = (0.9, 0.999)
EPS = 1e-8


@dataclass(frozen=True)
class LSTMConfig:
    """Shape of the network: ``layers`` LSTM layers of ``hidden`` units, two input features."""

    hidden: int = 20
    layers: int = 2

    @property
    def state_floats(self) -> int:
        """Floats of recurrent state per parameter coordinate (hidden and cell of every layer)."""
        return 2 * self.layers * self.hidden


class CoordinateLSTM(nn.Module):
    """The shared per-coordinate network; :meth:`step` advances every coordinate by one step."""

    def __init__(self, config: LSTMConfig = LSTMConfig()):
        super().__init__()
        self.config = config
        self.cells = nn.ModuleList(nn.LSTMCell(2 if i == 0 else config.hidden, config.hidden)
                                   for i in range(config.layers))
        self.head = nn.Linear(config.hidden, 1)
        with torch.no_grad():
            self.head.weight.mul_(0.1)
            self.head.bias.zero_()

    def init_state(self, count: int, device=None) -> dict[str, torch.Tensor]:
        """Zero state for ``count`` coordinates: ``h``, ``c`` ``[layers, count, hidden]``, ``m``, ``v``."""
        shape = (self.config.layers, count, self.config.hidden)
        zeros = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        return {"h": zeros(*shape), "c": zeros(*shape), "m": zeros(count), "v": zeros(count)}

    def step(self, grad: torch.Tensor, state: dict[str, torch.Tensor], t: int
             ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The direction for a flat gradient at step ``t`` (from 1), and the new state."""
        g = grad.to(self.head.weight.dtype)
        m = BETAS[0] * state["m"] + (1 - BETAS[0]) * g
        v = BETAS[1] * state["v"] + (1 - BETAS[1]) * g * g
        denom = (v / (1 - BETAS[1] ** t)).sqrt() + EPS
        features = torch.stack([m / (1 - BETAS[0] ** t) / denom, g / denom], dim=-1)
        x, hs, cs = features, [], []
        for layer, cell in enumerate(self.cells):
            h, c = cell(x, (state["h"][layer], state["c"][layer]))
            hs.append(h)
            cs.append(c)
            x = h
        direction = torch.tanh(self.head(x)).squeeze(-1)
        return direction, {"h": torch.stack(hs), "c": torch.stack(cs), "m": m, "v": v}
