"""Random quadratic bowls with a chosen condition number and optional gradient noise."""

from __future__ import annotations

import copy
import math

import torch

from ..errors import TaskError
from .data import BATCH_CYCLE


class QuadraticTask:
    """``0.5 (w - c - xi_t)^T A (w - c - xi_t)`` in ``dim`` dimensions.

    ``A`` is a random rotation of eigenvalues log-spaced from 1 down to ``1/condition``, ``c`` a
    random centre and ``xi_t`` Gaussian target noise of scale ``noise`` fixed by ``(seed, step)``
    (as in the noisy quadratic model, the gradient noise has covariance ``noise^2 A^2``). All of
    ``A``, ``c`` and the noise come from ``seed``; ``init(seed)`` draws ``w ~ N(0, I)``.
    """

    def __init__(self, name: str, dim: int, condition: float, noise: float = 0.0,
                 steps: int = 200, seed: int = 0, description: str = ""):
        if dim < 1 or not condition >= 1 or not noise >= 0:
            raise TaskError(f"task {name!r}: need dim >= 1, condition >= 1 and noise >= 0")
        self.name, self.steps, self.seed, self.description = name, int(steps), int(seed), description
        self.dim, self.condition, self.noise = int(dim), float(condition), float(noise)
        gen = torch.Generator().manual_seed(self.seed)
        rotation, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        eigenvalues = torch.logspace(0.0, -math.log10(condition), dim, dtype=torch.float64)
        self.hessian = ((rotation * eigenvalues) @ rotation.T).float()
        self.center = torch.randn(dim, generator=gen)
        self._noise = noise * torch.randn(BATCH_CYCLE, dim, generator=gen) if noise > 0 else None

    @property
    def num_params(self) -> int:
        return self.dim

    def init(self, seed: int) -> list[torch.Tensor]:
        """``w ~ N(0, I)`` drawn from ``seed``."""
        gen = torch.Generator().manual_seed(int(seed))
        return [torch.randn(self.dim, generator=gen).to(self.center.device)]

    def _value(self, w, target):
        d = w - target
        return 0.5 * (d @ (self.hessian @ d))

    def loss(self, params: list[torch.Tensor], step: int) -> torch.Tensor:
        """Noisy quadratic loss at ``step`` (pure, differentiable)."""
        target = self.center
        if self._noise is not None:
            target = target + self._noise[step % self._noise.shape[0]]
        return self._value(params[0], target)

    def heldout(self, params: list[torch.Tensor]) -> dict[str, float]:
        """The noise-free loss as ``test_loss``."""
        with torch.no_grad():
            return {"test_loss": float(self._value(params[0].detach(), self.center))}

    def to(self, device) -> "QuadraticTask":
        """A copy with its matrices on ``device``."""
        moved = copy.copy(self)
        moved.hessian, moved.center = self.hessian.to(device), self.center.to(device)
        moved._noise = None if self._noise is None else self._noise.to(device)
        return moved

    def __repr__(self) -> str:
        return (f"QuadraticTask({self.name!r}, dim={self.dim}, condition={self.condition:g}, "
                f"noise={self.noise:g}, seed={self.seed})")
