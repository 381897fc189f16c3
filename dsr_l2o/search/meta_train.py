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

import time
from dataclasses import dataclass
from typing import Callable

import torch

from .config import SearchConfig
from .estimators import TruncatedBackprop
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
        self._episode: Episode | None = None

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
        """One meta-step: a truncation of ``unroll`` inner steps and one relaxation update."""
        if self._episode is None:
            seed = episode_seed(self.config.seed, self.episode_offset + self.state.episode)
            self._episode = start_episode(self.family.sample(seed), seed, self.tracker, self.device)
        started = time.perf_counter()
        step = self.state.meta_step
        temperature = self.temperature(step)
        generator = torch.Generator().manual_seed(episode_seed(self.config.seed, 1_000_000 + step))
        self.optimizer.zero_grad(set_to_none=True)
        estimate = self.estimator(self.rule, self._episode, temperature, self.entropy_weight(step), generator)
        record = {"step": step, "episode": self.state.episode, "task": self._episode.name,
                  "temperature": temperature, "skipped": False, "lr": float(self.rule.lr().detach())}
        if estimate.meta_loss is None:
            record.update(skipped=True, reason=estimate.reason, meta_loss=None)
        else:
            grads = [p.grad for p in self.rule.parameters() if p.grad is not None]
            norm = _clip(grads, self.config.grad_clip)
            record["meta_loss"] = estimate.meta_loss
            if estimate.reason is None and torch.isfinite(norm) and grads:
                self.optimizer.step()
            else:
                record.update(skipped=True, reason="meta-gradient not finite")
        record["entropy"] = float(estimate.entropy.detach())
        if record["skipped"]:
            self.state.skipped += 1
        following = estimate.episode
        finished = estimate.diverged or following.t0 >= self.config.horizon
        if finished:
            self._episode = None
            self.state.episode += 1
        else:
            self._episode = following
        self.state.meta_step += 1
        elapsed = time.perf_counter() - started
        self.state.seconds += elapsed
        record["seconds"] = elapsed
        record["episode_end"] = finished
        return record

    @property
    def truncations(self) -> int:
        """Meta-steps per episode: one for an estimator that trains whole horizons, else horizon / unroll."""
        return getattr(self.estimator, "truncations", self.config.truncations)

    def at_episode_boundary(self) -> bool:
        """True when the next meta-step starts a new episode (a safe point to checkpoint)."""
        return self._episode is None

    def end_episode(self) -> None:
        """Drop the episode under way (the next meta-step starts a new one)."""
        if self._episode is not None:
            self._episode = None
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
        self._episode = None


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
