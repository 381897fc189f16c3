"""Tasks whose data order follows the protocol's seed: ``with_seed(seed)`` keeps the problem and
draws a new minibatch order (or gradient noise) from ``seed``."""

from __future__ import annotations

import copy

import torch

from .data import BATCH_CYCLE, batch_table
from .module_task import ModuleTask
from .quadratic import QuadraticTask


class SeededModuleTask(ModuleTask):
    """A :class:`ModuleTask` whose ``with_seed(seed)`` reshuffles the minibatches."""

    config = None

    def with_seed(self, seed: int) -> "SeededModuleTask":
        """The same model and data, minibatch order drawn from ``seed``."""
        moved = copy.copy(self)
        moved.seed = int(seed)
        moved._batches = batch_table(len(self.x_train), self.batch_size, moved.seed).to(self.device)
        return moved


class SeededQuadraticTask(QuadraticTask):
    """A :class:`QuadraticTask` whose matrix and centre come from ``problem_seed`` and whose target
    noise comes from ``seed``, so ``with_seed`` redraws only the noise."""

    config = None

    def __init__(self, name: str, dim: int, condition: float, noise: float = 0.0, steps: int = 200,
                 seed: int = 0, problem_seed: int = 0, description: str = ""):
        super().__init__(name, dim, condition, 0.0, steps, seed=problem_seed, description=description)
        self.problem_seed, self.noise = int(problem_seed), float(noise)
        self._set_noise(seed)

    def _set_noise(self, seed: int) -> None:
        self.seed = int(seed)
        if self.noise > 0:
            gen = torch.Generator().manual_seed(self.seed)
            self._noise = (self.noise * torch.randn(BATCH_CYCLE, self.dim, generator=gen)).to(self.center.device)

    def with_seed(self, seed: int) -> "SeededQuadraticTask":
        """The same quadratic, target noise drawn from ``seed``."""
        moved = copy.copy(self)
        moved._set_noise(seed)
        return moved
