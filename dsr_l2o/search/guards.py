"""Reject degenerate discrete rules before they are scored: constant, zero or ascent updates."""

from __future__ import annotations

import torch

from ..formula import Formula
from ..layout import gradient_names
from .features import OperandTracker
from .unroll import flatten, unflatten

MIN_COSINE = 0.0


def probe_operands(formula: Formula, tasks, steps: int = 20, lr: float = 1e-3):
    """Operand values along short plain-SGD trajectories of ``tasks`` (real gradients)."""
    tracker = OperandTracker(formula.grammar, formula.grammar.operands)
    probes = []
    for task in tasks:
        flat, shapes = flatten([p.detach().float() for p in task.init(0)])
        sizes = [s.numel() for s in shapes]
        state = tracker.init(flat)
        for t in range(steps):
            theta = flat.clone().requires_grad_(True)
            loss = task.loss(unflatten(theta, shapes), t)
            (grad,) = torch.autograd.grad(loss, theta)
            if not torch.isfinite(grad).all():
                break
            state, values = tracker.step(state, grad, flat, t + 1, sizes)
            probes.append(values)
            flat = flat - lr * grad
    return probes


def degenerate_reason(formula: Formula, probes) -> str | None:
    """Why ``formula`` cannot be a useful update rule, or ``None`` if it descends on the probes."""
    if not formula.operands:
        return "constant update: the formula reads no operand"
    grad_names = gradient_names(formula.grammar)
    cosines, largest = [], 0.0
    with torch.no_grad():
        for values in probes:
            direction = formula.evaluate(values)
            if not torch.isfinite(direction).all():
                return "non-finite update on probe gradients"
            largest = max(largest, float(direction.abs().max()))
            g = values[grad_names[0]] if grad_names else direction
            denom = direction.norm() * g.norm()
            if denom > 0:
                cosines.append(float(direction @ g / denom))
    if largest < 1e-12:
        return "zero update on probe gradients"
    if cosines and sum(cosines) / len(cosines) <= MIN_COSINE:
        return f"not a descent direction: mean cosine with the gradient {sum(cosines) / len(cosines):.2f}"
    return None
