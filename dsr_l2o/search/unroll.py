r"""The unroll: a relaxed rule trains one task for a truncation of inner steps.

An *episode* trains one task sampled from the training family for ``horizon`` steps with the
relaxed rule, from the task's initial parameters. :class:`Episode` holds where it stands (flat
parameters, operand buffers, the step, the log loss at its start); :func:`unroll` runs one
truncation of ``unroll`` steps on it and returns the per-step bounded relative log losses

.. math:: B \tanh\Big(\frac{\log L(w_{s+k}) - \log L(w_0)}{B}\Big)

(scale-free across tasks, softly bounded by ``B = 10`` so a blow-up still gives a gradient) with
the graph that leads from the rule's parameters to them. What to do with those losses is the
gradient estimator's business (:mod:`dsr_l2o.search.estimators`).
"""

from __future__ import annotations

import math
from contextlib import nullcontext
from dataclasses import dataclass, replace

import torch

from ..tasks.base import task_to
from .features import OperandTracker

BOUND = 10.0
"""Relative log losses saturate softly at this magnitude (a factor e**10 either way)."""


def flatten(params: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Size]]:
    """One flat vector of all parameters, and the shapes to split it back."""
    return torch.cat([p.reshape(-1) for p in params]), [p.shape for p in params]


def unflatten(flat: torch.Tensor, shapes: list[torch.Size]) -> list[torch.Tensor]:
    """Views of ``flat`` shaped like the task's parameters (differentiable)."""
    sizes = [math.prod(s) for s in shapes]
    return [chunk.view(shape) for chunk, shape in zip(torch.split(flat, sizes), shapes)]


def bounded_log_loss(loss: torch.Tensor, log0: float) -> torch.Tensor:
    """``log L - log L0``, softly saturated at ``+-BOUND`` so a blow-up still has a gradient."""
    return BOUND * torch.tanh((torch.log(loss.clamp_min(1e-30)) - log0) / BOUND)


@dataclass
class Episode:
    """One task being trained by the rule: everything the next truncation starts from."""

    task: object
    flat: torch.Tensor
    shapes: list
    buffers: dict
    t0: int
    log0: float
    scales: dict | None = None
    peak: torch.Tensor | None = None

    @property
    def name(self) -> str:
        return getattr(self.task, "name", "task")


def start_episode(task, seed: int, tracker: OperandTracker, device: torch.device) -> Episode:
    """The episode of ``task`` from ``task.init(seed)`` (moved to ``device`` where the task can)."""
    task = task_to(task, device)
    flat, shapes = flatten([p.to(device) for p in task.init(seed)])
    with torch.no_grad():
        loss0 = task.loss(unflatten(flat, shapes), 0)
    return Episode(task, flat.detach(), shapes, tracker.init(flat), 0, math.log(max(float(loss0), 1e-12)))


@dataclass
class Truncation:
    """What one unroll produced: bounded log losses (with graph), whether it diverged, the next state."""

    logs: list[torch.Tensor]
    diverged: bool
    episode: Episode


def unroll(rule, episode: Episode, tracker: OperandTracker, config, temperature: float,
           generator: torch.Generator) -> Truncation:
    """``config.unroll`` inner steps of ``rule`` on ``episode``; stops at a non-finite loss or gradient.

    Gradients of the inner loss are inputs (first-order) unless ``config.second_order``. With
    ``config.root_norm`` each step is divided by the running maximum of its RMS in the episode.
    With ``config.recompute_segment`` = k > 0 the truncation runs in segments of k steps under
    :func:`torch.utils.checkpoint.checkpoint`: the backward pass keeps only each segment's
    starting state and recomputes its graph (one more forward pass, a fraction of the memory).
    """
    state = _Carry(episode.flat.clone().requires_grad_(True), episode.buffers, episode.scales, episode.peak)
    segment = int(getattr(config, "recompute_segment", 0) or 0)
    logs, diverged = [], False
    for start in range(0, config.unroll, segment or config.unroll):
        stop = min(start + (segment or config.unroll), config.unroll)
        args = (rule, episode, tracker, config, temperature, generator, start, stop, state)
        if segment:
            from torch.utils.checkpoint import checkpoint

            args = (*args[:-1], replace(state, generator_state=generator.get_state()))
            state, part, diverged = checkpoint(_steps, *args, use_reentrant=False)
        else:
            state, part, diverged = _steps(*args)
        logs += part
        if diverged:
            break
    theta, task = state.theta, episode.task
    if not diverged:
        final = task.loss(unflatten(theta, episode.shapes), episode.t0 + config.unroll)
        diverged = not torch.isfinite(final)
        if not diverged:
            logs.append(bounded_log_loss(final, episode.log0))
    following = replace(episode, flat=theta.detach(), buffers={k: v.detach() for k, v in state.ema.items()},
                        t0=episode.t0 + config.unroll, scales=state.scales, peak=state.peak)
    return Truncation(logs, diverged, following)


@dataclass
class _Carry:
    """What one inner step hands the next: parameters, operand buffers, scales, the RMS peak."""

    theta: torch.Tensor
    ema: dict
    scales: dict | None
    peak: torch.Tensor | None
    generator_state: torch.Tensor | None = None


def _steps(rule, episode: Episode, tracker, config, temperature, generator, start: int, stop: int,
           carry: _Carry) -> tuple[_Carry, list[torch.Tensor], bool]:
    """Inner steps ``start`` to ``stop`` of the truncation from ``carry`` (a recomputed segment
    first rewinds ``generator`` to where the segment began, so it draws the same samples)."""
    if carry.generator_state is not None:
        generator.set_state(carry.generator_state)
    task, shapes, second = episode.task, episode.shapes, config.second_order
    segments = [math.prod(s) for s in shapes]
    theta, ema, scales, peak = carry.theta, carry.ema, carry.scales, carry.peak
    logs = []
    for k in range(start, stop):
        t = episode.t0 + k
        with _plainly_saved(carry.generator_state is not None):
            loss = task.loss(unflatten(theta, shapes), t)
            finite = bool(torch.isfinite(loss))
            if finite:
                (grad,) = torch.autograd.grad(loss, theta, retain_graph=True, create_graph=second)
        if not finite:
            return _Carry(theta, ema, scales, peak), logs, True
        if k > 0:
            logs.append(bounded_log_loss(loss, episode.log0))
        if not torch.isfinite(grad).all():
            return _Carry(theta, ema, scales, peak), logs, True
        if second:
            ema, values = tracker.step(ema, grad, theta, t + 1, segments)
        else:
            ema, values = tracker.step(ema, grad.detach(), theta.detach(), t + 1, segments)
        if config.relaxation == "sampled":
            direction = rule(values, temperature, generator=generator)
        else:
            if scales is None and config.normalize:
                scales = rule.measure_scales(values, temperature)
            direction = rule(values, temperature, scales)
        if config.root_norm:
            rms = direction.detach().square().mean().sqrt().clamp_min(1e-12)
            peak = rms if peak is None else torch.maximum(peak, rms)
            direction = direction / peak
        theta = theta - rule.lr() * direction
    return _Carry(theta, ema, scales, peak), logs, False


def _plainly_saved(inside_checkpoint: bool):
    """Inside a checkpointed segment, the task's loss graph is saved as usual (it is small, and the
    inner gradient reads it at once); only the relaxation's graph is left to be recomputed."""
    if not inside_checkpoint:
        return nullcontext()
    return torch.autograd.graph.saved_tensors_hooks(_same, _same)


def _same(tensor):
    return tensor
