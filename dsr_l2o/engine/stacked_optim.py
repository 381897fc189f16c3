"""torch.optim optimizers run on stacked parameters: one instance for all runs of an optimizer.

This is exact only for optimizers that act on every coordinate separately and whose update is
``lr`` times something that does not depend on ``lr`` (:data:`LR_LINEAR`: SGD with or without
(Nesterov) momentum, Adam, AdamW, Adamax, NAdam, RAdam, RMSprop). The instance runs at ``lr = 1``
on tensors ``[S, R_k, ...]`` holding all runs of optimizer ``k``; each run then moves by its own
``lr`` times that step, and a run that met a non-finite loss is put back where it was.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

LR_LINEAR = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax,
             torch.optim.NAdam, torch.optim.RAdam, torch.optim.RMSprop)


def stackable(make) -> bool:
    """Whether ``make(params, lr)`` builds a plain :data:`LR_LINEAR` optimizer (one group)."""
    probe = torch.zeros(2, requires_grad=True)
    optimizer = make([probe], 1e-3)
    if type(optimizer) not in LR_LINEAR or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    return not group.get("differentiable", False) and not group.get("capturable", False) \
        and not group.get("fused", False) and group.get("lr") == 1e-3


def train_stacked(makers: Sequence, task, members: Sequence[tuple[int, float]], seeds, steps: int,
                  init, seeded, stacked_loss, batch_runs):
    """Train every member ``(k, lr)`` of stackable makers on every seed (see the module doc)."""
    seeds = tuple(seeds)
    starts = [init(task, seed) for seed in seeds]
    used = sorted({k for k, _ in members})
    rows = {k: [r for r, (j, _) in enumerate(members) if j == k] for k in used}
    leaves, optimizers, lrs = {}, {}, {}
    for k in used:
        bases = [torch.stack(per_seed) for per_seed in zip(*starts)]
        leaves[k] = [b.unsqueeze(1).expand(b.shape[0], len(rows[k]), *b.shape[1:]).clone().requires_grad_(True)
                     for b in bases]
        optimizers[k] = makers[k](leaves[k], 1.0)
        lrs[k] = torch.tensor([members[r][1] for r in rows[k]], dtype=starts[0][0].dtype)
    tasks = seeded(task, seeds)
    alive = np.ones((len(seeds), len(members)), dtype=bool)
    record = np.full((len(seeds), len(members), steps), math.nan)
    order = [r for k in used for r in rows[k]]
    for step in range(steps):
        if not alive.any():
            break
        for s, seeded_task in enumerate(tasks):
            stacked = [torch.cat([leaves[k][i][s] for k in used]) for i in range(len(starts[0]))]
            losses = stacked_loss(seeded_task, stacked, step)
            values = losses.detach().to(torch.float64).cpu().numpy()
            live = alive[s, order]
            record[s, np.asarray(order)[live], step] = values[live]
            alive[s, order] = live & np.isfinite(values)
            losses.sum().backward()
        for k in used:
            _step(optimizers[k], leaves[k], lrs[k], torch.as_tensor(alive[:, rows[k]]))
    final = [[[leaf[s, rows[k].index(r)].detach() for leaf in leaves[k]]
              for r, (k, _) in enumerate(members)] for s in range(len(seeds))]
    return batch_runs(seeds, record, ~np.isfinite(record).all(axis=-1), final)


@torch.no_grad()
def _step(optimizer, leaves, lrs, alive) -> None:
    before = [leaf.detach().clone() for leaf in leaves]
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    for leaf, old in zip(leaves, before):
        shape = (*alive.shape, *([1] * (leaf.dim() - 2)))
        moved = old + lrs.reshape(1, -1, *shape[2:]).to(leaf.device) * (leaf - old)
        leaf.copy_(torch.where(alive.reshape(shape).to(leaf.device), moved, old))
