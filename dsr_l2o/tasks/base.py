"""The optimizee protocols: a :class:`Task` is a pure, differentiable training problem and a
:class:`TaskFamily` samples tasks deterministically from a seed."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

TASK_MEMBERS = ("name", "steps", "seed", "init", "loss", "to")
TASK_METHODS = ("init", "loss", "to")


@runtime_checkable
class Task(Protocol):
    """A training problem seen by an optimizer as a list of parameter tensors and a loss.

    ``loss(params, step)`` must be pure (no in-place ops on ``params``, no module state) so that
    gradients can flow through many unrolled optimizer steps; the minibatch of a step is fixed
    by ``(seed, step)``.
    """

    name: str
    steps: int
    seed: int

    def init(self, seed: int) -> list[torch.Tensor]:
        """Initial parameters (plain tensors without grad), deterministic in ``seed``."""

    def loss(self, params: list[torch.Tensor], step: int) -> torch.Tensor:
        """Scalar training loss of ``params`` on the minibatch of ``step``."""

    def to(self, device) -> "Task":
        """The same task with its data on ``device``."""


@runtime_checkable
class TaskFamily(Protocol):
    """A distribution over tasks for meta-training."""

    name: str
    description: str

    def sample(self, seed: int) -> Task:
        """A task drawn deterministically from ``seed``."""


def missing_task_members(obj) -> list[str]:
    """Names of the :class:`Task` members ``obj`` lacks (empty when it looks like a task)."""
    missing = []
    for member in TASK_MEMBERS:
        value = getattr(obj, member, None)
        if value is None:
            missing.append(member)
        elif member in TASK_METHODS and not callable(value):
            missing.append(member)
        elif member == "name" and not isinstance(value, str):
            missing.append(member)
        elif member in ("steps", "seed") and (isinstance(value, bool) or not isinstance(value, int)):
            missing.append(member)
    return missing


def is_task(obj) -> bool:
    """Whether ``obj`` is an instance (not a class) with every :class:`Task` member."""
    return not isinstance(obj, type) and not missing_task_members(obj)
