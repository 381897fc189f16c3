"""The trained LSTM as a ``torch.optim.Optimizer``, so the fair protocol tunes its lr like any other."""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from .model import CoordinateLSTM


class L2OOptimizer(torch.optim.Optimizer):
    """``w <- w - lr * net(g, state)`` per coordinate; the network's weights are frozen.

    ``state[p]`` holds the LSTM's hidden and cell state and RNNprop's two moving averages for
    every coordinate of ``p`` (see :mod:`dsr_l2o.l2o.model`).
    """

    def __init__(self, params: Iterable, net: CoordinateLSTM, lr: float = 1e-2):
        if not (isinstance(lr, (int, float)) and lr > 0):
            raise ValueError(f"lr must be positive, not {lr!r}")
        self.net = net
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One update of every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["net"] = self.net.init_state(p.numel(), device=p.device)
                state["step"] += 1
                direction, state["net"] = self.net.step(p.grad.reshape(-1), state["net"], state["step"])
                p.add_(direction.to(p.dtype).view_as(p), alpha=-group["lr"])
        return loss
