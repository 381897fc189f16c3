"""Operand values for a flat parameter vector: the functional twin of SymbolicOptimizer's state.

Used inside unrolled inner loops and batched runs, where parameters are one (possibly stacked)
tensor and every update must be out-of-place so autograd can see it. The operands are computed
as the :class:`~dsr_l2o.layout.OperandLayout` says. ``segments`` are the sizes of the parameter
tensors along the last axis (what a per-tensor ``norm`` reduces over); ``None`` is one tensor.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

from ..grammar import Grammar
from ..layout import OperandLayout, dispatch


class StepBackend:
    """The tracker's backend for one step: tensors in, new buffers and operand values out."""

    def __init__(self, layout: OperandLayout, state, grad, param, t, segments: Sequence[int] | None = None):
        self.layout, self.state, self.grad, self.param, self.t = layout, state, grad, param, t
        self.segments = segments
        self.values: dict[str, torch.Tensor] = {}
        self.new_state: dict[str, torch.Tensor] = {}

    def gradient(self, op):
        return self.grad

    def parameter(self, op):
        return self.param

    def step(self, op):
        return torch.full_like(self.grad, float(self.t))

    def derived(self, op):
        return self._source(op.source)

    def average(self, op):
        key = self.layout.buffer_of[op.name]
        if key not in self.new_state:
            self.new_state[key] = op.beta * self.state[key] + (1.0 - op.beta) * self._source(op.source)
        raw = self.new_state[key]
        return raw / (1.0 - op.beta**self.t) if op.debias else raw

    def previous(self, op):
        self.new_state[op.name] = self._source(op.source)
        return self.state[op.name]

    def norm(self, op):
        return tensor_norms(self._source(op.source), self.segments)

    def _source(self, source):
        out = self.layout.grammar.evaluate(source, self.values)
        return out if isinstance(out, torch.Tensor) else torch.full_like(self.grad, float(out))


def tensor_norms(x: torch.Tensor, segments: Sequence[int] | None = None) -> torch.Tensor:
    """The Euclidean norm of each segment of ``x``'s last axis, at every coordinate of the segment."""
    if segments is None or len(segments) == 1:
        return torch.linalg.vector_norm(x, dim=-1, keepdim=True).expand_as(x)
    if sum(segments) != x.shape[-1]:
        raise ValueError(f"tensor sizes {list(segments)} do not add up to the {x.shape[-1]} values of the vector")
    pieces = torch.split(x, list(segments), dim=-1)
    return torch.cat([torch.linalg.vector_norm(p, dim=-1, keepdim=True).expand_as(p) for p in pieces], dim=-1)


class OperandTracker:
    """Computes a grammar's operands step by step (EMAs updated before they are read)."""

    def __init__(self, grammar: Grammar, names: Iterable[str]):
        self.grammar = grammar
        self.layout = OperandLayout(grammar, names)
        self.order = self.layout.order

    def init(self, like: torch.Tensor) -> dict[str, torch.Tensor]:
        """Zero buffers for parameters shaped like ``like``."""
        return {key: torch.zeros_like(like) for key in self.layout.state_keys}

    def step(self, state: dict[str, torch.Tensor], grad: torch.Tensor, param: torch.Tensor,
             t: int, segments: Sequence[int] | None = None) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """Advance to step ``t`` (from 1); return the new buffers and every operand's value
        (``segments``: the parameter tensors' sizes along the last axis, for per-tensor norms)."""
        backend = StepBackend(self.layout, state, grad, param, t, segments)
        for op in self.layout.operands():
            backend.values[op.name] = dispatch(op, backend)
        return backend.new_state, backend.values

