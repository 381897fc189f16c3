r"""Meta-training of a relaxed rule by truncated back-propagation through real inner training.

An *episode* trains one task sampled from the training family for ``horizon`` steps with the
relaxed rule, starting from the task's initial parameters. It is cut into truncations of
``unroll`` steps; each truncation is one *meta-step*: its meta-loss

.. math:: \frac{1}{K}\sum_{k=1}^{K} B \tanh\Big(\frac{\log L(w_{s+k}) - \log L(w_0)}{B}\Big) + \lambda\,\bar H

(mean log loss relative to the start of the episode, scale-free across tasks and softly bounded
by ``B = 10`` so a blow-up still gives a gradient; plus the mean entropy of the mixtures,
weighted by a ramp ``lambda``; a truncation cut short by a non-finite loss uses the steps before it) is back-propagated into the relaxation,
and the parameters are carried on detached into the next truncation. Gradients of the inner
loss are treated as inputs by default (first-order, as in Andrychowicz et al. 2016): the
meta-gradient flows through the parameter trajectory, not through the operands' dependence on it;
``second_order: true`` back-propagates through the gradients too (Hessian-vector products, about
twice the cost), which lets the meta-gradient see curvature.

Everything random is derived from ``(seed, episode)``, so a run resumed from a checkpoint (always
taken at an episode boundary) ends exactly where an uninterrupted run ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from .config import SearchConfig
from .features import OperandTracker
from .relaxation import RelaxedRule


BOUND = 10.0
"""Relative log losses saturate softly at this magnitude (a factor e**10 either way)."""


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


def flatten(params: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Size]]:
    """One flat vector of all parameters, and the shapes to split it back."""
    return torch.cat([p.reshape(-1) for p in params]), [p.shape for p in params]


def unflatten(flat: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
    """Views of ``flat`` shaped like the task's parameters (differentiable)."""
    sizes = [math.prod(s) for s in shapes]
    return [chunk.view(shape) for chunk, shape in zip(torch.split(flat, sizes), shapes)]


class MetaTrainer:
    """Runs meta-steps of a :class:`RelaxedRule` on a task family."""

    def __init__(self, rule: RelaxedRule, family, config: SearchConfig, device: torch.device):
        self.rule, self.family, self.config, self.device = rule, family, config, device
        self.tracker = OperandTracker(rule.grammar, rule.operand_names)
        self.optimizer = torch.optim.Adam(rule.parameters(), lr=config.meta_lr)
        self.state = MetaState()
        self._episode = None  # (task, flat params, shapes, ema state, step, log L0)

    def temperature(self, step: int) -> float:
        """Geometric annealing from ``temperature_start`` to ``temperature_end``."""
        c = self.config
        frac = min(step / max(c.meta_steps - 1, 1), 1.0)
        return c.temperature_start * (c.temperature_end / c.temperature_start) ** frac

    def entropy_weight(self, step: int) -> float:
        """Linear ramp of the entropy penalty from 0 to ``entropy_weight``."""
        return self.config.entropy_weight * min(step / max(self.config.meta_steps - 1, 1), 1.0)

    def _start_episode(self) -> None:
        seed = episode_seed(self.config.seed, self.state.episode)
        task = self.family.sample(seed)
        task = task.to(self.device) if hasattr(task, "to") else task
        flat, shapes = flatten([p.to(self.device) for p in task.init(seed)])
        with torch.no_grad():
            loss0 = task.loss(unflatten(flat, shapes), 0)
        log0 = math.log(max(float(loss0), 1e-12))
        self._episode = [task, flat.detach(), shapes, self.tracker.init(flat), 0, log0, None, None]

    def step(self) -> dict:
        """One meta-step: a truncation of ``unroll`` inner steps and one relaxation update."""
        if self._episode is None:
            self._start_episode()
        started = time.perf_counter()
        task, flat, shapes, ema, t0, log0, scales, peak = self._episode
        temperature = self.temperature(self.state.meta_step)
        theta = flat.clone().requires_grad_(True)
        generator = torch.Generator().manual_seed(episode_seed(self.config.seed, 1_000_000 + self.state.meta_step))
        logs, diverged, second = [], False, self.config.second_order
        for k in range(self.config.unroll):
            t = t0 + k
            loss = task.loss(unflatten(theta, shapes), t)
            if not torch.isfinite(loss):
                diverged = True
                break
            if k > 0:
                logs.append(self._bounded(loss, log0))
            (grad,) = torch.autograd.grad(loss, theta, retain_graph=True, create_graph=second)
            if not torch.isfinite(grad).all():
                diverged = True
                break
            if second:
                ema, values = self.tracker.step(ema, grad, theta, t + 1)
            else:
                ema, values = self.tracker.step(ema, grad.detach(), theta.detach(), t + 1)
            if self.config.relaxation == "sampled":
                direction = self.rule(values, temperature, generator=generator)
            else:
                if scales is None and self.config.normalize:
                    scales = self.rule.measure_scales(values, temperature)
                direction = self.rule(values, temperature, scales)
            if self.config.root_norm:
                rms = direction.detach().square().mean().sqrt().clamp_min(1e-12)
                peak = rms if peak is None else torch.maximum(peak, rms)
                direction = direction / peak
            theta = theta - self.rule.lr() * direction
        if not diverged:
            final = task.loss(unflatten(theta, shapes), t0 + self.config.unroll)
            diverged = not torch.isfinite(final)
            if not diverged:
                logs.append(self._bounded(final, log0))
        entropy = self._entropy(temperature)
        record = {"step": self.state.meta_step, "episode": self.state.episode,
                  "task": getattr(task, "name", "task"), "temperature": temperature,
                  "skipped": False, "lr": float(self.rule.lr().detach())}
        self.optimizer.zero_grad(set_to_none=True)
        if not logs:
            record.update(skipped=True, reason="inner loss not finite", meta_loss=None)
        else:
            meta_loss = torch.stack(logs).mean()
            objective = meta_loss + self.entropy_weight(self.state.meta_step) * entropy
            objective.backward()
            grads = [p.grad for p in self.rule.parameters() if p.grad is not None]
            norm = _clip(grads, self.config.grad_clip)
            record["meta_loss"] = float(meta_loss.detach())
            if torch.isfinite(objective) and torch.isfinite(norm) and grads:
                self.optimizer.step()
            else:
                record.update(skipped=True, reason="meta-gradient not finite")
        record["entropy"] = float(entropy.detach())
        if record["skipped"]:
            self.state.skipped += 1
        finished = diverged or t0 + self.config.unroll >= self.config.horizon
        if finished:
            self._episode = None
            self.state.episode += 1
        else:
            self._episode = [task, theta.detach(), shapes, {k: v.detach() for k, v in ema.items()},
                             t0 + self.config.unroll, log0, scales, peak]
        self.state.meta_step += 1
        elapsed = time.perf_counter() - started
        self.state.seconds += elapsed
        record["seconds"] = elapsed
        record["episode_end"] = finished
        return record

    @staticmethod
    def _bounded(loss: torch.Tensor, log0: float) -> torch.Tensor:
        """``log L - log L0``, softly saturated at ``+-BOUND`` so a blow-up still has a gradient."""
        return BOUND * torch.tanh((torch.log(loss.clamp_min(1e-30)) - log0) / BOUND)

    def at_episode_boundary(self) -> bool:
        """True when the next meta-step starts a new episode (a safe point to checkpoint)."""
        return self._episode is None

    def _entropy(self, temperature: float) -> torch.Tensor:
        total = []
        for _, logits in self.rule.slots():
            logp = torch.log_softmax(logits / max(temperature, 1e-3), dim=-1)
            total.append(-(logp.exp() * logp).sum())
        return torch.stack(total).mean() if total else torch.zeros((), device=self.device)

    def state_dict(self) -> dict:
        """Relaxation, meta-optimizer and progress (plain tensors and numbers only)."""
        if not self.at_episode_boundary():
            raise RuntimeError("checkpoint only at an episode boundary")
        return {"rule": self.rule.state_dict(), "optimizer": self.optimizer.state_dict(),
                "meta": vars(self.state).copy()}

    def load_state_dict(self, data: dict) -> None:
        self.rule.load_state_dict(data["rule"])
        self.optimizer.load_state_dict(data["optimizer"])
        self.state = MetaState(**data["meta"])
        self._episode = None


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
    if not trainer.at_episode_boundary():
        trainer._episode = None
        trainer.state.episode += 1
    on_checkpoint()
