"""The loss of many runs of one task at once: a hand-batched loss for the built-in task kinds
(:mod:`.explicit`), else ``torch.func.vmap`` over the task's own loss.

A task whose loss ``vmap`` cannot trace (data-dependent Python control flow, ``.item()``, an
unsupported op) is evaluated run by run instead; the failure is remembered per task name and
class, so it is paid for once.
"""

from __future__ import annotations

import torch
from torch.func import grad_and_value, vmap

from .explicit import explicit_loss
from .flat import FlatLayout

_NO_VMAP: set[tuple[type, str]] = set()


def vmap_unsupported(task) -> bool:
    """Whether an earlier call found that ``vmap`` cannot run ``task.loss``."""
    return (type(task), getattr(task, "name", "")) in _NO_VMAP


def _remember_failure(task) -> None:
    _NO_VMAP.add((type(task), getattr(task, "name", "")))


class FlatLoss:
    """Loss values and gradients of ``task`` for a stack of flat parameter vectors ``[R, N]``."""

    def __init__(self, task, layout: FlatLayout):
        self.task, self.layout = task, layout
        self.explicit = explicit_loss(task)

    def _single(self, flat: torch.Tensor, step: int) -> torch.Tensor:
        return self.task.loss(self.layout.unflatten(flat), step)

    def value_and_grad(self, flat: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss [R], grad [R, N])`` at ``step`` for every row of ``flat`` (no graph kept)."""
        if self.explicit is not None:
            leaf = flat.detach().requires_grad_(True)
            with torch.enable_grad():
                values = self.explicit(self.layout.unflatten(leaf), step)
                (grads,) = torch.autograd.grad(values.sum(), leaf)
            return values.detach(), grads
        if not vmap_unsupported(self.task):
            try:
                grads, values = vmap(grad_and_value(self._single), in_dims=(0, None))(flat, step)
                return values.detach(), grads.detach()
            except Exception:  # noqa: BLE001 - any tracing failure means: run them one by one
                _remember_failure(self.task)
        return self._loop(flat, step)

    def _loop(self, flat: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        values, grads = [], []
        for row in flat:
            leaf = row.detach().clone().requires_grad_(True)
            with torch.enable_grad():
                loss = self._single(leaf, step)
                (grad,) = torch.autograd.grad(loss, leaf, allow_unused=True)
            values.append(loss.detach().reshape(()))
            grads.append(torch.zeros_like(leaf) if grad is None else grad)
        return torch.stack(values), torch.stack(grads)


def stacked_loss(task, stacked: list[torch.Tensor], step: int) -> torch.Tensor:
    """``[R]`` losses of ``task`` for parameter tensors stacked along a new first dim (keeps the
    autograd graph to the stacked leaves; falls back to a loop where ``vmap`` fails)."""
    explicit = explicit_loss(task)
    if explicit is not None:
        return explicit(stacked, step)
    if not vmap_unsupported(task):
        try:
            return vmap(lambda *ps: task.loss(list(ps), step))(*stacked)
        except Exception:  # noqa: BLE001
            _remember_failure(task)
    rows = len(stacked[0])
    return torch.stack([task.loss([p[r] for p in stacked], step).reshape(()) for r in range(rows)])
