"""A batch of training runs of one task: R members (optimizer, learning rate) x S seeds.

Every run follows the protocol's sequential trainer (:func:`dsr_l2o.evaluation.protocol.train`):
it starts from ``task.init(seed)`` on ``with_data_seed(task, seed)``'s data, records the training
loss before each step, and stops being updated at its first non-finite loss (it is then
diverged and scores ``+inf``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..evaluation.baselines import eval_mode
from ..evaluation.protocol import with_data_seed
from ..formula import Formula
from .flat import FlatLayout
from .formula_step import FormulaStepper
from .stacked_optim import stackable, train_stacked
from .vmap_loss import FlatLoss, stacked_loss


@dataclass
class BatchRuns:
    """What a batch of runs recorded: ``losses[s, r, k]`` is run ``r``'s loss before step ``k``
    on seed ``seeds[s]`` (``nan`` after it diverged), ``diverged[s, r]`` whether it met a
    non-finite loss; ``final[s][r]`` its parameters at the end (or where it stopped)."""

    seeds: tuple[int, ...]
    losses: np.ndarray
    diverged: np.ndarray
    final: list[list[list[torch.Tensor]]]

    def scores(self, window: int) -> np.ndarray:
        """``[S, R]`` mean loss over the last ``window`` steps; ``+inf`` for a diverged run."""
        finite = self.losses[:, :, -window:].mean(axis=-1)
        return np.where(self.diverged, math.inf, finite)

    def curve(self, s: int, r: int) -> list[float]:
        """Run ``(s, r)``'s recorded losses, up to and including a non-finite one."""
        row = self.losses[s, r]
        if not self.diverged[s, r]:
            return row.tolist()
        first = int(np.nonzero(~np.isfinite(row))[0][0])
        return row[: first + 1].tolist()


def _seeded(task, seeds):
    return [with_data_seed(task, seed) for seed in seeds]


def _init(task, seed: int) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [p.detach().clone() for p in task.init(seed)]


def train_formulas(formulas: Sequence[Formula], task, members: Sequence[tuple[int, float]],
                   seeds: Sequence[int], steps: int,
                   weight_decays: Sequence[float] | None = None) -> BatchRuns:
    """Train ``task`` with formula ``formulas[k]`` at ``lr`` for every member ``(k, lr)`` and seed.

    ``weight_decays[k]`` is formula ``k``'s decoupled weight decay (default 0). Members of one
    formula are stacked next to each other; the result lists them in the order given.
    """
    seeds = tuple(seeds)
    order = sorted(range(len(members)), key=lambda i: members[i][0])
    used = sorted({members[i][0] for i in order})
    counts = [sum(1 for i in order if members[i][0] == k) for k in used]
    inits = [_init(task, seed) for seed in seeds]
    layout = FlatLayout.of(inits[0])
    flat = torch.stack([layout.flatten(p) for p in inits])
    params = flat[:, None, :].expand(-1, len(order), -1).clone()
    lrs = torch.tensor([float(members[i][1]) for i in order], dtype=params.dtype, device=params.device)
    decay = None
    if weight_decays is not None:
        decay = torch.tensor([float(weight_decays[members[i][0]]) for i in order], dtype=params.dtype,
                             device=params.device)
    stepper = FormulaStepper([formulas[k] for k in used], counts, lrs, decay, segments=layout.sizes)
    state = stepper.init(params)
    losses_fns = [FlatLoss(t, layout) for t in _seeded(task, seeds)]
    alive = torch.ones(params.shape[:2], dtype=torch.bool, device=params.device)
    record = torch.full((steps, *params.shape[:2]), math.nan, dtype=torch.float64)
    with torch.no_grad():
        for step in range(steps):
            values, grads = zip(*(fn.value_and_grad(params[s], step) for s, fn in enumerate(losses_fns)))
            values, grads = torch.stack(values), torch.stack(grads)
            record[step] = torch.where(alive, values, math.nan).to(torch.float64).cpu()
            alive = alive & torch.isfinite(values)
            if not bool(alive.any()):
                break
            state, moved = stepper.step(state, params, grads, step + 1)
            params = torch.where(alive[..., None], moved, params)
    back = np.argsort(np.asarray(order))
    return _collect(seeds, record, params, layout, back)


def _collect(seeds, record: torch.Tensor, params: torch.Tensor, layout: FlatLayout, back) -> BatchRuns:
    losses = record.permute(1, 2, 0).numpy()[:, back]
    diverged = ~np.isfinite(losses).all(axis=-1)
    final = [[layout.unflatten(params[s, r]) for r in back] for s in range(len(seeds))]
    return BatchRuns(tuple(seeds), losses, diverged, final)


def train_optimizers(makers: Sequence, task, members: Sequence[tuple[int, float]],
                     seeds: Sequence[int], steps: int, stacked: bool | None = None) -> BatchRuns:
    """Train ``task`` with ``makers[k](params, lr)`` (a torch.optim optimizer) for every member
    ``(k, lr)`` and seed; the losses of all runs of a seed are computed in one batched call and
    differentiated with one backward pass.

    With ``stacked`` (default: when every maker is :func:`~.stacked_optim.stackable`) one
    instance per maker steps all its runs at once (:mod:`.stacked_optim`); otherwise each run
    has its own instance, exact for any optimizer."""
    if stacked is None:
        stacked = all(stackable(make) for make in makers)
    if stacked:
        return train_stacked(makers, task, members, seeds, steps, _init, _seeded, stacked_loss, BatchRuns)
    seeds = tuple(seeds)
    runs = len(members)
    leaves = [[[p.clone().requires_grad_(True) for p in _init(task, seed)] for _ in range(runs)]
              for seed in seeds]
    optimizers = [[makers[k](leaves[s][r], lr) for r, (k, lr) in enumerate(members)]
                  for s in range(len(seeds))]
    tasks = _seeded(task, seeds)
    alive = np.ones((len(seeds), runs), dtype=bool)
    record = np.full((len(seeds), runs, steps), math.nan)
    for step in range(steps):
        for s, seeded in enumerate(tasks):
            active = np.nonzero(alive[s])[0]
            if not active.size:
                continue
            stacked = [torch.stack([leaves[s][r][i] for r in active]) for i in range(len(leaves[s][0]))]
            losses = stacked_loss(seeded, stacked, step)
            values = losses.detach().to(torch.float64).cpu().numpy()
            record[s, active, step] = values
            finite = np.isfinite(values)
            alive[s, active[~finite]] = False
            losses.sum().backward()
            for r in active[finite]:
                optimizers[s][r].step()
                optimizers[s][r].zero_grad(set_to_none=True)
            for r in active[~finite]:
                optimizers[s][r].zero_grad(set_to_none=True)
    for row in optimizers:
        for optimizer in row:
            eval_mode(optimizer)
    final = [[[p.detach() for p in leaves[s][r]] for r in range(runs)] for s in range(len(seeds))]
    return BatchRuns(seeds, record, ~np.isfinite(record).all(axis=-1), final)
