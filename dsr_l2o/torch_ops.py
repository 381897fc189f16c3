"""The tensor side of the operators: the primitives namespace over torch and the safe square root.

Kept apart from :mod:`dsr_l2o.primitives` and :mod:`dsr_l2o.operators` so that reading and checking
a grammar (``dsr-l2o grammar check``) does not import torch; the first tensor function called
imports this module.
"""

from __future__ import annotations

import torch

from .primitives import TINY_DEN
from .safe_sympy import TINY


class TorchOps:
    """Primitives on tensors."""

    neg, sign, abs, sqrt = torch.neg, torch.sign, torch.abs, torch.sqrt
    add, sub, mul, div = torch.add, torch.sub, torch.mul, torch.div
    maximum, minimum, clamp_min, clamp_max = torch.maximum, torch.minimum, torch.clamp_min, torch.clamp_max

    @staticmethod
    def safe_den(y: torch.Tensor) -> torch.Tensor:
        """``sgn(y) * max(|y|, 1e-12)`` with ``sgn(0) = +1``."""
        magnitude = torch.clamp_min(torch.abs(y), TINY_DEN)
        return torch.where(y < 0, -magnitude, magnitude)

    def __getattr__(self, name):
        return getattr(torch, name)


TORCH = TorchOps()


class _SafeSqrt(torch.autograd.Function):
    """``sqrt(|x|)`` whose derivative is ``sign(x) / (2 sqrt(max(|x|, 1e-12)))``: finite at 0."""

    generate_vmap_rule = True  # so the batched engine can vmap it

    @staticmethod
    def forward(x):
        return torch.sqrt(torch.abs(x))

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sign(x) * 0.5 * torch.rsqrt(torch.clamp_min(torch.abs(x), TINY))


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(|x|)`` with a finite derivative everywhere."""
    if x.requires_grad or torch._C._are_functorch_transforms_active():
        return _SafeSqrt.apply(x)
    return torch.sqrt(torch.abs(x))  # no derivative is taken: the same values without the Function's cost
