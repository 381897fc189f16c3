"""The optimizee protocols: a :class:`Task` is a pure, differentiable training problem and a
:class:`TaskFamily` samples tasks deterministically from a seed.

A task needs four members: ``name`` (str), ``steps`` (int, the default horizon), ``init(seed)``
and ``loss(params, step)``. Everything else is optional, with these defaults (read through the
helpers below, never directly):

* ``seed`` (int): the task's own data seed. Without it the task has none: :func:`task_seed`
  gives ``None`` and the protocol uses the seed passed to ``init``.
* ``to(device)``: the task with its data on ``device``. Without it the task lives on the CPU and
  :func:`task_to` wraps it so that ``init`` returns tensors on ``device`` and ``loss`` takes and
  returns tensors there (moving them to and from the CPU, which autograd follows).
* ``with_seed(seed)``: the task with another data order (see :mod:`dsr_l2o.evaluation.protocol`).
* ``heldout(params)``: held-out metrics, a dict of floats; ``description``: one line of text.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

TASK_MEMBERS = ("name", "steps", "init", "loss")
TASK_METHODS = ("init", "loss")
OPTIONAL_MEMBERS = ("seed", "to", "with_seed", "heldout", "description")


@runtime_checkable
class Task(Protocol):
    """A training problem seen by an optimizer as a list of parameter tensors and a loss.

    ``loss(params, step)`` must be pure (no in-place ops on ``params``, no module state) so that
    gradients can flow through many unrolled optimizer steps; the minibatch of a step is fixed
    by ``step`` (and the task's data seed, if it has one).
    """

    name: str
    steps: int

    def init(self, seed: int) -> list[torch.Tensor]:
        """Initial parameters (plain tensors without grad), deterministic in ``seed``."""

    def loss(self, params: list[torch.Tensor], step: int) -> torch.Tensor:
        """Scalar training loss of ``params`` on the minibatch of ``step``."""


@runtime_checkable
class TaskFamily(Protocol):
    """A distribution over tasks (``description`` is optional)."""

    name: str

    def sample(self, seed: int) -> Task:
        """A task drawn deterministically from ``seed``."""


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def missing_task_members(obj) -> list[str]:
    """Names of the :class:`Task` members ``obj`` lacks or has of the wrong kind (empty when it
    looks like a task); optional members are checked only where present."""
    missing = []
    for member in TASK_MEMBERS + ("seed", "to"):
        value = getattr(obj, member, None)
        if value is None:
            if member in TASK_MEMBERS:
                missing.append(member)
        elif member in TASK_METHODS + ("to",) and not callable(value):
            missing.append(member)
        elif member == "name" and not isinstance(value, str):
            missing.append(member)
        elif member in ("steps", "seed") and not _is_int(value):
            missing.append(member)
    return missing


def is_task(obj) -> bool:
    """Whether ``obj`` is an instance (not a class) with every required :class:`Task` member."""
    return not isinstance(obj, type) and not missing_task_members(obj)


def is_family(obj) -> bool:
    """Whether ``obj`` is an instance that looks like a :class:`TaskFamily` (and not a task)."""
    return (not isinstance(obj, type) and isinstance(getattr(obj, "name", None), str)
            and callable(getattr(obj, "sample", None)) and not is_task(obj))


def task_seed(task) -> int | None:
    """The task's own data seed, or ``None`` when it has none (then ``init``'s seed is all there is)."""
    seed = getattr(task, "seed", None)
    return seed if _is_int(seed) else None


def task_to(task, device):
    """``task`` on ``device``: its own ``to`` where it has one; else the task itself on the CPU,
    or a :class:`MovedTask` that moves what it takes and returns."""
    if callable(getattr(task, "to", None)):
        return task.to(device)
    if torch.device(device).type == "cpu":
        return task
    return MovedTask(task, device)


class MovedTask:
    """A CPU task seen from ``device``: parameters live on ``device``, the loss runs on the CPU."""

    def __init__(self, task, device):
        self.task, self.device = task, torch.device(device)
        self.name, self.steps = task.name, task.steps

    def __getattr__(self, item):
        if item == "task":
            raise AttributeError(item)
        value = getattr(self.task, item)
        if item == "heldout" and callable(value):
            return lambda params: value([p.to("cpu") for p in params])
        return value

    def init(self, seed: int) -> list[torch.Tensor]:
        return [p.to(self.device) for p in self.task.init(seed)]

    def loss(self, params, step: int) -> torch.Tensor:
        return self.task.loss([p.to("cpu") for p in params], step).to(self.device)

    def to(self, device):
        return task_to(self.task, device)
