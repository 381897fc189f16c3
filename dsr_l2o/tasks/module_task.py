"""``ModuleTask``: an ``nn.Module`` plus a dataset as a pure functional task."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..errors import TaskError
from .data import batch_table


def default_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy for integer targets, mean squared error otherwise."""
    if target.dtype in (torch.int64, torch.int32):
        return F.cross_entropy(output, target)
    return F.mse_loss(output.reshape(target.shape), target)


class ModuleTask:
    """Trains ``module`` on ``(x_train, y_train)`` with minibatches fixed by ``(seed, step)``.

    The module only supplies the architecture: its parameters are replaced by the ``params``
    list (in ``named_parameters`` order) through ``torch.func.functional_call``. It runs in eval
    mode so buffers are never updated; avoid dropout/batch-norm. ``init(seed)`` re-runs every
    submodule's ``reset_parameters`` under a private RNG seeded with ``seed``; parameters of
    submodules without ``reset_parameters`` keep their constructed values. Integer targets make
    a classification task (``heldout`` then also reports ``test_accuracy``).
    """

    def __init__(self, name: str, module: torch.nn.Module, x_train: torch.Tensor,
                 y_train: torch.Tensor, *, x_test: torch.Tensor | None = None,
                 y_test: torch.Tensor | None = None, loss_fn=default_loss, batch_size: int = 128,
                 steps: int = 200, seed: int = 0, description: str = ""):
        if len(x_train) != len(y_train) or len(x_train) == 0:
            raise TaskError(f"task {name!r}: x_train and y_train need the same, non-zero length")
        if (x_test is None) != (y_test is None):
            raise TaskError(f"task {name!r}: give both x_test and y_test, or neither")
        self.name, self.steps, self.seed, self.description = name, int(steps), int(seed), description
        self.batch_size = min(int(batch_size), len(x_train))
        self.module = module.eval()
        self._template = copy.deepcopy(module).cpu()
        self.loss_fn = loss_fn
        self.x_train, self.y_train, self.x_test, self.y_test = x_train, y_train, x_test, y_test
        self._names = [n for n, _ in module.named_parameters()]
        self._batches = batch_table(len(x_train), self.batch_size, self.seed).to(x_train.device)

    @property
    def device(self) -> torch.device:
        return self.x_train.device

    @property
    def num_params(self) -> int:
        """Total number of scalar parameters."""
        return sum(p.numel() for p in self.module.parameters())

    def init(self, seed: int) -> list[torch.Tensor]:
        """Fresh parameters from the modules' own initialisers, deterministic in ``seed``."""
        fresh = copy.deepcopy(self._template)
        with torch.random.fork_rng(devices=[]):
            torch.random.default_generator.manual_seed(int(seed))
            for sub in fresh.modules():
                if hasattr(sub, "reset_parameters"):
                    sub.reset_parameters()
        return [p.detach().to(self.device).clone() for p in fresh.parameters()]

    def _forward(self, params, x):
        if len(params) != len(self._names):
            raise TaskError(f"task {self.name!r} expects {len(self._names)} parameter tensors, "
                            f"got {len(params)}")
        return functional_call(self.module, dict(zip(self._names, params)), (x,))

    def loss(self, params: list[torch.Tensor], step: int) -> torch.Tensor:
        """Mean loss of ``params`` on the minibatch of ``step`` (pure, differentiable)."""
        idx = self._batches[step % self._batches.shape[0]]
        output = self._forward(params, self.x_train.index_select(0, idx))
        return self.loss_fn(output, self.y_train.index_select(0, idx))

    def heldout(self, params: list[torch.Tensor]) -> dict[str, float]:
        """Loss (and accuracy for classification) on the whole test split; ``{}`` without one."""
        if self.x_test is None:
            return {}
        with torch.no_grad():
            output = self._forward([p.detach() for p in params], self.x_test)
            result = {"test_loss": float(self.loss_fn(output, self.y_test))}
            if self.y_test.dtype in (torch.int64, torch.int32):
                correct = (output.argmax(-1) == self.y_test).float().mean()
                result["test_accuracy"] = float(correct)
        return result

    def to(self, device) -> "ModuleTask":
        """A copy of this task with module buffers and data on ``device``."""
        moved = copy.copy(self)
        moved.module = copy.deepcopy(self._template).to(device)
        for attr in ("x_train", "y_train", "x_test", "y_test", "_batches"):
            value = getattr(self, attr)
            setattr(moved, attr, None if value is None else value.to(device))
        return moved

    def __repr__(self) -> str:
        return (f"ModuleTask({self.name!r}, params={self.num_params}, steps={self.steps}, "
                f"seed={self.seed})")
