"""The outer loop of meta-training: episodes, meta-steps, the meta-optimizer, checkpoints.

Three pieces, joined by narrow interfaces (as in learned_optimization's ``outer_trainers``):
:mod:`.unroll` trains a task with the relaxed rule for one truncation, :mod:`.estimators` turns a
truncation into a gradient on the relaxation, and :class:`MetaTrainer` here samples the episodes,
anneals the temperature, clips and applies the gradient and keeps the progress. An episode is cut
into truncations of ``unroll`` steps, one per meta-step, and its parameters are carried on
detached into the next truncation.

Everything random is derived from ``(seed, episode)`` and ``(seed, meta-step)``, so a run resumed
from a checkpoint (always taken at an episode boundary) ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from . import distributed
from .config import SearchConfig
from .estimators import TruncatedBackprop, entropy
from .features import OperandTracker
from .relaxation import RelaxedRule
from .unroll import Episode, start_episode


@dataclass
class MetaState:
    """Where meta-training stands: enough to resume it exactly."""

    meta_step: int = 0
    episode: int = 0
    skipped: int = 0
    seconds: float = 0.0


def episode_seed(seed: int, episode: int) -> int:
    """The task seed of one episode (stable across runs and resumes)."""
    return (seed * 1_000_003 + episode * 7919 + 17) % (2**31 - 1)


class MetaTrainer:
    """The outer loop: runs meta-steps of a :class:`RelaxedRule` on a task family.

    ``parameters`` (default: all of the rule's) are what the meta-optimizer updates,
    ``temperature`` (default: the geometric schedule of ``config``) maps a meta-step to its
    temperature, and ``episode_offset`` shifts the stream of episode seeds, so a refit of a fixed
    formula (``temperature=lambda step: 0.0``, only scales and step size) runs on tasks unseen by
    the main meta-training. ``estimator`` computes the gradient (:mod:`.estimators`).
    """

    def __init__(self, rule: RelaxedRule, family, config: SearchConfig, device: torch.device,
                 parameters=None, temperature: Callable[[int], float] | None = None, episode_offset: int = 0,
                 estimator=None):
        self.rule, self.family, self.config, self.device = rule, family, config, device
        self.tracker = OperandTracker(rule.grammar, rule.operand_names)
        self.optimizer = torch.optim.Adam(list(rule.parameters()) if parameters is None else list(parameters),
                                          lr=config.meta_lr)
        self.schedule = temperature or self.annealed
        self.episode_offset = episode_offset
        self.estimator = estimator or make_estimator(config, self.tracker, rule.grammar)
        self.state = MetaState()
        self._episodes: dict[int, Episode | None] | None = None
        self._names: dict[int, str] = {}
        self._truncation = 0
        self.contributes, self.slots = _work_of_this_process(self.estimator, config.meta_batch)

    def annealed(self, step: int) -> float:
        """Geometric annealing from ``temperature_start`` to ``temperature_end``."""
        c = self.config
        frac = min(step / max(c.meta_steps - 1, 1), 1.0)
        return c.temperature_start * (c.temperature_end / c.temperature_start) ** frac

    def temperature(self, step: int) -> float:
        """The temperature of meta-step ``step``."""
        return self.schedule(step)

    def entropy_weight(self, step: int) -> float:
        """Linear ramp of the entropy penalty from 0 to ``entropy_weight``."""
        return self.config.entropy_weight * min(step / max(self.config.meta_steps - 1, 1), 1.0)

    def step(self) -> dict:
        """One meta-step: a truncation of ``unroll`` inner steps on each of the ``meta_batch`` tasks
        (this process's share of them when distributed) and one relaxation update with the mean of
        their meta-gradients."""
        if self._episodes is None:
            self._episodes = {b: self._start(b) for b in self.slots}
            self._truncation = 0
        started = time.perf_counter()
        step = self.state.meta_step
        temperature = self.temperature(step)
        record = {"step": step, "episode": self.state.episode, "task": self._names.get(0, "task"),
                  "temperature": temperature, "skipped": False, "lr": float(self.rule.lr().detach())}
        params = [p for group in self.optimizer.param_groups for p in group["params"]]
        total = Contributions(params)
        for b, episode in self._episodes.items():
            if episode is None:  # diverged earlier in this episode: sits out until the others end
                continue
            for p in self.rule.parameters():
                p.grad = None
            generator = torch.Generator().manual_seed(step_seed(self.config.seed, step, b))
            estimate = self.estimator(self.rule, episode, temperature, self.entropy_weight(step), generator)
            if self.contributes:
                total.add(estimate)
            self._episodes[b] = None if estimate.diverged else estimate.episode
        total.live = sum(e is not None for e in self._episodes.values()) if self.contributes else 0
        mean = total.reduce()
        with torch.no_grad():
            record["entropy"] = float(entropy(self.rule, temperature))
        if mean.meta_loss is None:
            record.update(skipped=True, reason="inner loss not finite", meta_loss=None)
        else:
            record["meta_loss"] = mean.meta_loss
            norm = _clip(mean.grads, self.config.grad_clip) if mean.grads else torch.tensor(math.inf)
            if torch.isfinite(norm):
                self.optimizer.step()
            else:
                record.update(skipped=True, reason="meta-gradient not finite")
        if record["skipped"]:
            self.state.skipped += 1
        self._truncation += 1
        finished = mean.live == 0 or self._truncation >= self.truncations
        if finished:
            self._episodes = None
            self.state.episode += 1
        self.state.meta_step += 1
        elapsed = time.perf_counter() - started
        self.state.seconds += elapsed
        record["seconds"] = elapsed
        record["episode_end"] = finished
        return record

    def _start(self, slot: int) -> Episode:
        """The episode of task ``slot`` of the meta-batch at the current episode index."""
        index = self.episode_offset + self.state.episode * self.config.meta_batch + slot
        seed = episode_seed(self.config.seed, index)
        episode = start_episode(self.family.sample(seed), seed, self.tracker, self.device)
        self._names[slot] = episode.name
        return episode

    @property
    def truncations(self) -> int:
        """Meta-steps per episode: one for an estimator that trains whole horizons, else horizon / unroll."""
        return getattr(self.estimator, "truncations", self.config.truncations)

    def at_episode_boundary(self) -> bool:
        """True when the next meta-step starts a new episode (a safe point to checkpoint)."""
        return self._episodes is None

    def end_episode(self) -> None:
        """Drop the episode under way (the next meta-step starts a new one)."""
        if self._episodes is not None:
            self._episodes = None
            self.state.episode += 1

    def state_dict(self) -> dict:
        """Relaxation, meta-optimizer and progress (plain tensors and numbers only)."""
        if not self.at_episode_boundary():
            raise RuntimeError("checkpoint only at an episode boundary")
        data = {"rule": self.rule.state_dict(), "optimizer": self.optimizer.state_dict(),
                "meta": vars(self.state).copy()}
        if hasattr(self.estimator, "state_dict"):
            data["estimator"] = self.estimator.state_dict()
        return data

    def load_state_dict(self, data: dict) -> None:
        self.rule.load_state_dict(data["rule"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.state = MetaState(**data["meta"])
        if hasattr(self.estimator, "load_state_dict"):
            self.estimator.load_state_dict(data.get("estimator", {}))
        self._episodes = None


def step_seed(seed: int, meta_step: int, slot: int = 0) -> int:
    """The seed of the random draws of task ``slot`` at ``meta_step`` (the same in every process)."""
    return episode_seed(seed + 7 * slot, 1_000_000 + meta_step)


def _work_of_this_process(estimator, meta_batch: int) -> tuple[bool, range]:
    """Whether this process's gradients count, and which tasks of the meta-batch it trains.

    An estimator that splits its own work over the processes (``splits_itself``, the population
    gradient) runs every task in every process, and only process 0's identical gradient counts;
    otherwise the tasks are dealt out in blocks and every process's gradients count.
    """
    if getattr(estimator, "splits_itself", False):
        return distributed.is_writer(), range(meta_batch)
    if meta_batch < distributed.world():
        raise distributed.DistributedError(
            f"meta_batch is {meta_batch} but {distributed.world()} processes run the search; with "
            f"estimator {getattr(estimator, 'name', 'truncated_backprop')} each process needs at least one task: "
            f"set meta_batch to a multiple of {distributed.world()} (--meta-batch)")
    return True, distributed.share(meta_batch)


class Contributions:
    """This process's sums of the meta-batch's gradients and meta-losses, then their means over
    all processes: one all-reduce (float64) of the gradients, a has-gradient mask and four counts."""

    def __init__(self, params: list[torch.Tensor]):
        self.params = params
        sizes = [p.numel() for p in params]
        self.offsets = [sum(sizes[:i]) for i in range(len(sizes) + 1)]
        device = params[0].device if params else torch.device("cpu")
        self.buffer = torch.zeros(self.offsets[-1] + len(params) + 4, dtype=torch.float64, device=device)
        self.good = self.counted = self.live = 0
        self.loss_sum = 0.0
        self.meta_loss: float | None = None
        self.grads: list[torch.Tensor] = []

    def add(self, estimate) -> None:
        """Count one task's estimate: its meta-loss, and its gradient when finite."""
        if estimate.meta_loss is None:
            return
        self.counted += 1
        self.loss_sum += estimate.meta_loss
        grads = [p.grad for p in self.params]
        if estimate.reason is not None or all(g is None for g in grads) or \
                not all(g is None or bool(torch.isfinite(g).all()) for g in grads):
            return
        self.good += 1
        n = self.offsets[-1]
        for i, g in enumerate(grads):
            if g is not None:
                self.buffer[self.offsets[i]:self.offsets[i + 1]] += g.reshape(-1)
                self.buffer[n + i] = 1.0

    def reduce(self) -> "Contributions":
        """Sum over the processes; set each parameter's ``.grad`` to the mean gradient (``None``
        where no task gave it one)."""
        n, k = self.offsets[-1], len(self.params)
        self.buffer[n + k:] = torch.tensor([self.good, self.loss_sum, self.counted, self.live], dtype=torch.float64)
        distributed.all_sum(self.buffer)
        good, loss_sum, counted, live = self.buffer[n + k:].tolist()
        self.live = int(live)
        self.meta_loss = loss_sum / counted if counted else None
        for i, p in enumerate(self.params):
            p.grad = None
            if good and self.buffer[n + i] > 0:
                p.grad = (self.buffer[self.offsets[i]:self.offsets[i + 1]] / good).to(p.dtype).view_as(p)
                self.grads.append(p.grad)
        return self


def make_estimator(config: SearchConfig, tracker: OperandTracker, grammar):
    """The gradient estimator ``config.estimator`` names."""
    if config.estimator == "population":
        from .population import PopulationGradient

        return PopulationGradient(config, grammar)
    return TruncatedBackprop(config, tracker)


def _clip(grads: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale ``grads`` to total norm ``max_norm`` at most; the norm is taken in float64 so that
    huge but finite entries (1e22 squared overflows float32) still clip instead of reading as inf."""
    if not grads:
        return torch.tensor(0.0)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.double()) for g in grads]))
    if torch.isfinite(norm) and norm > max_norm:
        for g in grads:
            g.mul_((max_norm / norm).to(g.dtype))
    return norm


def run_meta_training(trainer: MetaTrainer, on_step: Callable[[dict], None],
                      on_checkpoint: Callable[[], None]) -> None:
    """Meta-steps until ``meta_steps``; checkpoints at the first episode boundary after every
    ``checkpoint_every`` meta-steps, and at the end."""
    config = trainer.config
    last = trainer.state.meta_step
    while trainer.state.meta_step < config.meta_steps:
        on_step(trainer.step())
        boundary = trainer.at_episode_boundary()
        if boundary and trainer.state.meta_step - last >= config.checkpoint_every:
            on_checkpoint()
            last = trainer.state.meta_step
    trainer.end_episode()
    on_checkpoint()
