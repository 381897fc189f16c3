"""Hand-batched losses for the built-in task kinds: the same loss as ``task.loss`` for a stack of
``R`` parameter sets, written with batched tensor ops (cheaper than ``vmap`` for small tasks).

:func:`explicit_loss` returns ``loss(stacked, step) -> [R]`` where ``stacked[i]`` is parameter
tensor ``i`` with a leading run axis, or ``None`` for a task it does not know (``vmap`` is used).
It knows :class:`~dsr_l2o.tasks.quadratic.QuadraticTask`, :class:`~dsr_l2o.tasks.rosenbrock.RosenbrockTask`
and :class:`~dsr_l2o.tasks.module_task.ModuleTask` whose module is a ``Sequential`` of ``Linear``
layers, elementwise activations and (for CNNs such as the digits one) ``Unflatten``, ``Conv2d``,
``MaxPool2d``/``AvgPool2d`` and ``Flatten``, trained with the default loss. Convolutions of all
runs are one grouped convolution: images are laid out ``[batch, runs * channels, H, W]``.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..tasks.module_task import ModuleTask, default_loss
from ..tasks.networks import ACTIVATIONS
from ..tasks.quadratic import QuadraticTask
from ..tasks.rosenbrock import RosenbrockTask

StackedLoss = Callable[[list[torch.Tensor], int], torch.Tensor]
_ELEMENTWISE = tuple(ACTIVATIONS.values()) + (nn.Identity,)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)
_KNOWN = (nn.Linear, nn.Conv2d, nn.Unflatten, nn.Flatten) + _POOLS + _ELEMENTWISE


def explicit_loss(task) -> StackedLoss | None:
    """The hand-batched loss of ``task``, or ``None`` when ``task`` is not of a known kind."""
    if isinstance(task, QuadraticTask) and not _overrides(task, QuadraticTask, "loss", "_value"):
        return _quadratic(task)
    if isinstance(task, RosenbrockTask) and not _overrides(task, RosenbrockTask, "loss"):
        return _rosenbrock(task)
    if isinstance(task, ModuleTask) and not _overrides(task, ModuleTask, "loss", "_forward"):
        return _sequential(task)
    return None


def _overrides(task, base: type, *names: str) -> bool:
    return any(getattr(type(task), n) is not getattr(base, n) for n in names)


def _quadratic(task: QuadraticTask) -> StackedLoss:
    def loss(stacked, step):
        target = task.center
        if task._noise is not None:
            target = target + task._noise[step % task._noise.shape[0]]
        d = stacked[0] - target
        return 0.5 * ((d @ task.hessian.T) * d).sum(-1)
    return loss


def _rosenbrock(task: RosenbrockTask) -> StackedLoss:
    def loss(stacked, step):
        x = stacked[0]
        head, tail = x[:, :-1], x[:, 1:]
        return (task.curvature * (tail - head * head) ** 2 + (1 - head) ** 2).sum(-1)
    return loss


def _sequential(task: ModuleTask) -> StackedLoss | None:
    module = task.module
    if task.loss_fn is not default_loss:
        return None
    if isinstance(module, nn.Linear):
        layers, prefixes = [module], [""]
    elif isinstance(module, nn.Sequential):
        layers, prefixes = list(module), [f"{i}." for i in range(len(module))]
    else:
        return None
    if not all(isinstance(m, _KNOWN) for m in layers) or not _plain_convs(layers):
        return None
    if [n for n, _ in module.named_parameters()] != [
            p + kind for p, m in zip(prefixes, layers) if isinstance(m, (nn.Linear, nn.Conv2d))
            for kind in (("weight", "bias") if m.bias is not None else ("weight",))]:
        return None

    def loss(stacked, step):
        idx = task._batches[step % task._batches.shape[0]]
        x, y = task.x_train.index_select(0, idx), task.y_train.index_select(0, idx)
        runs = stacked[0].shape[0]
        h = _forward(layers, iter(stacked), x, runs)
        if y.dtype in (torch.int64, torch.int32):
            per = F.cross_entropy(h.reshape(-1, h.shape[-1]), y.repeat(runs), reduction="none")
            return per.reshape(runs, -1).mean(-1)
        return ((h.reshape(runs, -1) - y.reshape(1, -1)) ** 2).mean(-1)
    return loss


def _plain_convs(layers) -> bool:
    """Convolutions without groups, dilation or padding modes other than zeros, after an
    ``Unflatten`` of the features into ``(channels, H, W)``."""
    convs = [m for m in layers if isinstance(m, nn.Conv2d)]
    if not convs:
        return True
    first = next(i for i, m in enumerate(layers) if isinstance(m, (nn.Conv2d, nn.Unflatten, nn.Linear)))
    return (isinstance(layers[first], nn.Unflatten) and layers[first].dim == 1
            and all(c.groups == 1 and c.dilation == (1, 1) and c.padding_mode == "zeros"
                    and not isinstance(c.padding, str) for c in convs))


def _forward(layers, params, x: torch.Tensor, runs: int) -> torch.Tensor:
    """The network for every run: vectors are ``[runs, batch, F]`` (or the shared input
    ``[batch, F]``), images ``[batch, runs * C, H, W]`` (or the shared ``[batch, C, H, W]``)."""
    h, image, shared = x, False, True
    for m in layers:
        if isinstance(m, nn.Linear):
            h = torch.matmul(h, next(params).transpose(-1, -2))
            if m.bias is not None:
                h = h + next(params)[:, None, :]
            shared = False
        elif isinstance(m, nn.Conv2d):
            weight = next(params)
            weight = weight.reshape(-1, *weight.shape[2:])
            bias = next(params).reshape(-1) if m.bias is not None else None
            if shared:
                h = F.conv2d(h, weight, bias, m.stride, m.padding)
            else:
                h = F.conv2d(h, weight, bias, m.stride, m.padding, groups=runs)
            shared = False
        elif isinstance(m, nn.Unflatten):
            if not shared:
                h = h.transpose(0, 1).reshape(h.shape[1], runs * m.unflattened_size[0], *m.unflattened_size[1:])
            else:
                h = h.reshape(h.shape[0], *m.unflattened_size)
            image = True
        elif isinstance(m, nn.Flatten):
            if image and not shared:
                h = h.reshape(h.shape[0], runs, -1).transpose(0, 1)
            elif image:
                h = h.reshape(h.shape[0], -1)
            image = False
        else:
            h = m(h)
    return h
