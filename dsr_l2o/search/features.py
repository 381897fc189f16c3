"""Operand values for a flat parameter vector: the functional twin of SymbolicOptimizer's state.

Used inside unrolled inner loops, where parameters are one flat tensor and every update must be
out-of-place so autograd can see it.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..grammar import Grammar


class OperandTracker:
    """Computes a grammar's operands step by step (EMAs updated before they are read)."""

    def __init__(self, grammar: Grammar, names: Iterable[str]):
        self.grammar = grammar
        self.order = grammar.dependencies(names)
        self.emas = [n for n in self.order if grammar.operands[n].kind == "ema"]

    def init(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Zero EMA state for parameters shaped like ``like``."""
        return {name: torch.zeros_like(like) for name in self.emas}

    def step(self, state: dict[str, torch.Tensor], grad: torch.Tensor, param: torch.Tensor,
             t: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Advance to step ``t`` (from 1); return the new EMA state and every operand's value."""
        values: dict[str, torch.Tensor] = {}
        new_state: dict[str, torch.Tensor] = {}
        for name in self.order:
            operand = self.grammar.operands[name]
            if operand.kind == "grad":
                values[name] = grad
            elif operand.kind == "param":
                values[name] = param
            elif operand.kind == "step":
                values[name] = torch.full_like(grad, float(t))
            elif operand.kind == "expr":
                values[name] = self._source(operand.source, values, grad)
            else:
                source = self._source(operand.source, values, grad)
                raw = operand.beta * state[name] + (1.0 - operand.beta) * source
                new_state[name] = raw
                values[name] = raw / (1.0 - operand.beta**t) if operand.debias else raw
        return new_state, values

    def _source(self, source, values, like):
        out = self.grammar.evaluate(source, values)
        return out if isinstance(out, torch.Tensor) else torch.full_like(like, float(out))
