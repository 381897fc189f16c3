"""Muon for the 2-D weight matrices and AdamW for every other tensor, at one learning rate.

``torch.optim.Muon`` refuses tensors that are not 2-D (biases, conv kernels, the vectors of the
quadratic and Rosenbrock tasks), so the usual recipe pairs it with AdamW for those. Here Muon's
``adjust_lr_fn="match_rms_adamw"`` scales its orthogonalised update to AdamW's typical RMS, so a
single tuned learning rate is meaningful for both halves. Both use weight decay 0.01 (AdamW's
default). A task without 2-D tensors therefore trains with AdamW alone.
"""

from __future__ import annotations

import torch

WEIGHT_DECAY = 0.01


class MuonWithAdamW:
    """Steps 2-D tensors with :class:`torch.optim.Muon` and the rest with :class:`torch.optim.AdamW`."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = WEIGHT_DECAY,
                 adjust_lr_fn: str = "match_rms_adamw"):
        params = list(params)
        matrices = [p for p in params if p.ndim == 2]
        others = [p for p in params if p.ndim != 2]
        self.optimizers: list[torch.optim.Optimizer] = []
        if matrices:
            self.optimizers.append(torch.optim.Muon(matrices, lr=lr, weight_decay=weight_decay,
                                                    adjust_lr_fn=adjust_lr_fn))
        if others:
            self.optimizers.append(torch.optim.AdamW(others, lr=lr, weight_decay=weight_decay))

    @property
    def param_groups(self) -> list[dict]:
        """The parameter groups of both optimizers (Muon's first)."""
        return [group for opt in self.optimizers for group in opt.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=set_to_none)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for opt in self.optimizers:
            opt.step()
        return loss
