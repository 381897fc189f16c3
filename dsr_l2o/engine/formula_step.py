"""One update step of many formula runs on a stacked flat parameter tensor ``[S, R, N]``.

The runs (members) are grouped by formula into contiguous slices of the ``R`` axis. The moving
averages that any formula needs (the union) are updated once for the whole tensor
(:class:`~.operands.BatchOperands`); each formula's direction is then evaluated on its slice with
the grammar's safe torch operators, and every run moves by its own learning rate:
``w <- w (1 - lr wd)``, EMAs updated, ``w <- w - lr * f``, as :class:`~dsr_l2o.optimizer.SymbolicOptimizer`.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..errors import ConfigError
from ..formula import Formula
from .operands import BatchOperands


class FormulaStepper:
    """Steps ``formulas[k]`` on the member slice ``slices[k]`` of the ``R`` axis (``segments``:
    the parameter tensors' sizes along ``N``, which per-tensor ``norm`` operands reduce over)."""

    def __init__(self, formulas: Sequence[Formula], counts: Sequence[int], lrs: torch.Tensor,
                 weight_decays: torch.Tensor | None = None, segments: Sequence[int] | None = None):
        if not formulas or len(formulas) != len(counts):
            raise ConfigError("a formula batch needs one member count per formula")
        grammar = formulas[0].grammar
        if any(f.grammar != grammar for f in formulas):
            raise ConfigError("formulas of one batch must share a grammar; batch each grammar apart")
        self.formulas = list(formulas)
        starts = [sum(counts[:k]) for k in range(len(counts))]
        self.slices = [slice(a, a + n) for a, n in zip(starts, counts)]
        needed = set().union(*(f.operands for f in formulas))
        self.tracker = BatchOperands(grammar, sorted(needed))
        self.segments = list(segments) if segments is not None and self.tracker.layout.norms else None
        self.lrs = lrs.reshape(1, -1, 1)
        decay = None if weight_decays is None or not bool((weight_decays != 0).any()) else weight_decays
        self.decay = None if decay is None else (1.0 - lrs * decay).reshape(1, -1, 1)

    def init(self, params: torch.Tensor) -> dict[str, torch.Tensor]:
        """Zero optimizer state for parameters ``[S, R, N]``."""
        return self.tracker.init(params)

    def step(self, state: dict[str, torch.Tensor], params: torch.Tensor, grads: torch.Tensor,
             t: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """The new state and parameters after step ``t`` (from 1); nothing is changed in place."""
        if self.decay is not None:
            params = params * self.decay
        state, values = self.tracker.step(state, grads, params, t, self.segments)
        directions = []
        for formula, part in zip(self.formulas, self.slices):
            env = self.tracker.for_slice(formula.operands, values, part, grads, params, t, self.segments)
            if not env:
                env = {"g": grads[:, part]}
            directions.append(formula.evaluate(env).to(params.dtype))
        direction = directions[0] if len(directions) == 1 else torch.cat(directions, dim=1)
        return state, params - self.lrs * direction
