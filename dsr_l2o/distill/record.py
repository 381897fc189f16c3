"""Record a teacher optimizer: operand values and the teacher's update direction per coordinate."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..errors import ConfigError
from ..search.features import OperandTracker
from ..search.meta_train import episode_seed
from ..search.unroll import flatten

DIVERGED = 1e4


@dataclass
class Trace:
    """Samples ``(operands -> direction)``: one row per (episode, step, coordinate) kept.

    ``weight`` equalises episodes: each row weighs ``1 / mean(direction**2)`` of its episode, so a
    task whose updates are large does not drown the others. ``episode`` numbers the kept
    episode of each row (0, 1, ...), so rows can be held out by episode.
    """

    operands: dict[str, torch.Tensor]
    direction: torch.Tensor
    weight: torch.Tensor
    episodes: int
    episode: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.direction.numel())

    def rows(self, index: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """The operands, directions and weights of the rows at ``index``."""
        return {k: v[index] for k, v in self.operands.items()}, self.direction[index], self.weight[index]

    def subset(self, mask: torch.Tensor) -> "Trace":
        """The rows where ``mask`` is true."""
        episode = None if self.episode is None else self.episode[mask]
        count = int(episode.unique().numel()) if episode is not None else self.episodes
        return Trace({k: v[mask] for k, v in self.operands.items()}, self.direction[mask], self.weight[mask],
                     count, episode)

    def split(self, heldout_episodes: int) -> tuple["Trace", "Trace | None"]:
        """``(fit rows, held-out rows)``: the last ``heldout_episodes`` episodes are held out
        (none when the trace has too few episodes)."""
        if self.episode is None or heldout_episodes < 1 or self.episodes <= heldout_episodes:
            return self, None
        cut = self.episodes - heldout_episodes
        return self.subset(self.episode < cut), self.subset(self.episode >= cut)


def record(teacher, family, grammar, names, episodes: int = 8, steps: int = 100, lr: float = 1e-2,
           coords: int = 256, seed: int = 0, on_episode=None) -> Trace:
    """Run ``teacher`` (an :class:`~dsr_l2o.evaluation.OptimizerSpec`) for ``steps`` steps on
    ``episodes`` tasks sampled from ``family`` at step size ``lr``; keep up to ``coords`` random
    coordinates per step. The direction is ``(w_before - w_after) / lr``. ``on_episode(done, total)``
    is called after each episode (for a progress bar).

    An episode ends early where the loss is not finite or exceeds ``DIVERGED`` times its first
    value (a diverging teacher's steps say little about its rule and swamp the regression).
    The teacher steps float64 copies of the parameters (the task's loss reads them cast to its
    own dtype), so the recorded direction is free of float32 cancellation and an exact formula
    matches it to about 1e-12.
    """
    tracker = OperandTracker(grammar, names)
    generator = torch.Generator().manual_seed(seed)
    columns: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    directions, weights, episode_ids, kept = [], [], [], 0
    for episode in range(episodes):
        task_seed = episode_seed(seed, 50_000 + episode)
        task = family.sample(task_seed)
        init = task.init(task_seed)
        dtypes = [p.dtype for p in init]
        params = [p.detach().double().clone().requires_grad_(True) for p in init]
        optimizer = teacher.make(params, lr)
        ema = tracker.init(flatten([p.detach() for p in params])[0])
        rows: list[tuple[dict[str, torch.Tensor], torch.Tensor]] = []
        first = None
        for step in range(steps):
            loss = task.loss([p.to(d) for p, d in zip(params, dtypes)], step)
            if not torch.isfinite(loss):
                break
            value = float(loss.detach())
            first = value if first is None else first
            if abs(value) > DIVERGED * max(abs(first), 1.0):
                break
            grads = torch.autograd.grad(loss, params)
            before = flatten([p.detach() for p in params])[0].clone()
            flat_grad = flatten(list(grads))[0]
            ema, values = tracker.step(ema, flat_grad, before, step + 1, [p.numel() for p in params])
            for p, g in zip(params, grads):
                p.grad = g.clone()
            optimizer.step()
            after = flatten([p.detach() for p in params])[0]
            direction = (before - after) / lr
            if not (torch.isfinite(direction).all() and all(torch.isfinite(values[n]).all() for n in names)):
                break
            pick = torch.randperm(direction.numel(), generator=generator)[:coords]
            rows.append(({n: values[n][pick].double() for n in names}, direction[pick].double()))
        if on_episode is not None:
            on_episode(episode + 1, episodes)
        if not rows:
            continue
        episode_dir = torch.cat([d for _, d in rows])
        scale = float(episode_dir.square().mean())
        if not math.isfinite(scale) or scale <= 0:
            continue
        for n in names:
            columns[n].append(torch.cat([v[n] for v, _ in rows]))
        directions.append(episode_dir)
        weights.append(torch.full_like(episode_dir, 1.0 / scale))
        episode_ids.append(torch.full(episode_dir.shape, kept, dtype=torch.int64))
        kept += 1
    if not kept:
        raise ConfigError("the teacher made no finite, non-zero update on any sampled task; "
                          "try a smaller --lr or another --tasks family")
    return Trace({n: torch.cat(c) for n, c in columns.items()}, torch.cat(directions), torch.cat(weights), kept,
                 torch.cat(episode_ids))
