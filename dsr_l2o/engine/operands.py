"""A grammar's operands for a batch of formula runs, each computed where it is needed.

Moving averages with the same definition share one buffer (``m`` and its debiased ``m_hat`` are
one EMA, as in :class:`~dsr_l2o.optimizer.SymbolicOptimizer`) and are updated on the whole
stacked tensor before anything reads them; held ``prev`` values are kept on the whole tensor too.
Stateless ``expr`` operands that no buffer reads are evaluated per formula, on that formula's
slice only.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from ..expr import variables
from ..grammar import Grammar
from ..layout import OperandLayout, dispatch
from ..search.features import StepBackend


class BatchOperands:
    """Operand values of ``grammar`` for stacked parameters ``[S, R, N]``, step by step."""

    def __init__(self, grammar: Grammar, names: Iterable[str]):
        self.grammar = grammar
        self.layout = OperandLayout(grammar, names)
        self.order = self.layout.order
        stateful = self.layout.stateful
        full = set(stateful)
        for n in stateful:
            full.update(grammar.dependencies(variables(grammar.operands[n].source)))
        self.full = [op for op in self.layout.operands() if op.name in full]
        self._orders: dict[tuple[str, ...], list[str]] = {}

    def init(self, like: torch.Tensor) -> dict:
        """Zero buffers (moving averages, held values) shaped like ``like``."""
        return {key: torch.zeros_like(like) for key in self.layout.state_keys}

    def step(self, state: dict, grads: torch.Tensor, params: torch.Tensor, t: int,
             segments: Sequence[int] | None = None) -> tuple[dict, dict]:
        """Advance the EMAs to step ``t`` (from 1); returns the new state and the full-size values
        (``segments``: the parameter tensors' sizes along ``N``, for per-tensor norms)."""
        backend = StepBackend(self.layout, state, grads, params, t, segments)
        for op in self.full:
            backend.values[op.name] = dispatch(op, backend)
        return {**state, **backend.new_state}, backend.values

    def for_slice(self, names: Iterable[str], values: dict, part: slice, grads: torch.Tensor,
                  params: torch.Tensor, t: int, segments: Sequence[int] | None = None) -> dict[str, torch.Tensor]:
        """The operands ``names`` (and what they need) on the member slice ``part``."""
        key = tuple(names)
        order = self._orders.get(key)
        if order is None:
            order = self._orders[key] = self.grammar.dependencies(key)
        backend = StepBackend(self.layout, {}, grads[:, part], params[:, part], t, segments)
        backend.values = {n: values[n][:, part] for n in order if n in values}
        for name in order:
            if name not in backend.values:
                backend.values[name] = dispatch(self.grammar.operands[name], backend)
        return {n: backend.values[n] for n in key}
