"""The chained Rosenbrock function."""

from __future__ import annotations

import copy

import torch

from ..errors import TaskError


class RosenbrockTask:
    """``sum_i curvature (x_{i+1} - x_i^2)^2 + (1 - x_i)^2`` in ``dim >= 2`` dimensions.

    Deterministic (no data, ``step`` is ignored); minimum 0 at all ones. ``init(seed)`` starts
    at the classic point (-1.2, 1, -1.2, 1, ...) plus ``N(0, 0.1^2)`` jitter drawn from ``seed``.
    """

    def __init__(self, name: str, dim: int = 2, curvature: float = 100.0, steps: int = 300,
                 seed: int = 0, description: str = ""):
        if dim < 2 or not curvature > 0:
            raise TaskError(f"task {name!r}: need dim >= 2 and curvature > 0")
        self.name, self.steps, self.seed, self.description = name, int(steps), int(seed), description
        self.dim, self.curvature = int(dim), float(curvature)
        self.device = torch.device("cpu")

    @property
    def num_params(self) -> int:
        return self.dim

    def init(self, seed: int) -> list[torch.Tensor]:
        """The classic start plus seeded jitter."""
        gen = torch.Generator().manual_seed(int(seed))
        start = torch.tensor([-1.2, 1.0]).repeat(self.dim // 2 + 1)[: self.dim]
        return [(start + 0.1 * torch.randn(self.dim, generator=gen)).to(self.device)]

    def loss(self, params: list[torch.Tensor], step: int) -> torch.Tensor:
        """Rosenbrock value (pure, differentiable; ``step`` unused)."""
        x = params[0]
        head, tail = x[:-1], x[1:]
        return (self.curvature * (tail - head * head) ** 2 + (1 - head) ** 2).sum()

    def to(self, device) -> "RosenbrockTask":
        """A copy whose ``init`` returns tensors on ``device``."""
        moved = copy.copy(self)
        moved.device = torch.device(device)
        return moved

    def __repr__(self) -> str:
        return f"RosenbrockTask({self.name!r}, dim={self.dim}, curvature={self.curvature:g})"
