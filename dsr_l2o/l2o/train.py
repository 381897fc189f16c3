r"""Meta-training of the LSTM optimizer by truncated back-propagation, as the search meta-trains a rule.

The same task families, episode seeds, horizon and unroll as :mod:`dsr_l2o.search.meta_train`,
and its meta-loss: the mean over a truncation of the bounded relative log loss
``B tanh((log L(w_{s+k}) - log L(w_0)) / B)``. Gradients of the inner loss are inputs
(first order, as in Andrychowicz et al. 2016); the parameters and the LSTM state are carried on
detached into the next truncation. A learnable log step size is trained with the network.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch

from ..errors import ConfigError
from ..search.meta_train import episode_seed
from ..search.unroll import bounded_log_loss, flatten, unflatten
from .model import CoordinateLSTM, LSTMConfig

LOG_LR_META_LR = 0.05
"""Meta learning rate of the log step size (the search's ``meta_lr``)."""


@dataclass(frozen=True)
class L2OTrainConfig:
    """What ``dsr-l2o l2o train`` does; defaults are the search's (``searches/default``) where it has one."""

    tasks: str = "mixed"
    meta_steps: int = 300
    unroll: int = 20
    horizon: int = 100
    meta_lr: float = 5e-3
    init_lr: float = 3e-2
    hidden: int = 20
    layers: int = 2
    grad_clip: float = 1.0
    seed: int = 0

    def __post_init__(self):
        for key in ("meta_steps", "unroll", "horizon", "hidden", "layers"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{key} must be a positive integer, not {value!r}")
        for key in ("meta_lr", "init_lr", "grad_clip"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{key} must be a positive number, not {value!r}")
        if self.hidden > 256 or self.layers > 4:
            raise ConfigError("hidden must be at most 256 and layers at most 4")

    def to_json(self) -> dict:
        return asdict(self)


@dataclass
class L2OTrainResult:
    """The trained network, its step size and a summary of training."""

    net: CoordinateLSTM
    lr: float
    meta_steps: int
    episodes: int
    skipped: int
    seconds: float
    final_meta_loss: float | None


def train_l2o(config: L2OTrainConfig, on_step: Callable[[dict], None] | None = None) -> L2OTrainResult:
    """Meta-train a :class:`CoordinateLSTM` on ``config.tasks`` (see the module docstring)."""
    from ..tasks import get_family

    family = get_family(config.tasks)
    torch.manual_seed(config.seed)
    net = CoordinateLSTM(LSTMConfig(config.hidden, config.layers))
    log_lr = torch.nn.Parameter(torch.tensor(math.log(config.init_lr)))
    params = list(net.parameters()) + [log_lr]
    optimizer = torch.optim.Adam([{"params": list(net.parameters())},
                                  {"params": [log_lr], "lr": LOG_LR_META_LR}], lr=config.meta_lr)
    started, step, episode, skipped, recent = time.perf_counter(), 0, 0, 0, []
    while step < config.meta_steps:
        seed = episode_seed(config.seed, episode)
        task = family.sample(seed)
        flat, shapes = flatten([p.detach().float() for p in task.init(seed)])
        with torch.no_grad():
            log0 = math.log(max(float(task.loss(unflatten(flat, shapes), 0)), 1e-12))
        state, t = net.init_state(flat.numel()), 0
        while t < config.horizon and step < config.meta_steps:
            theta = flat.detach().requires_grad_(True)
            state = {k: v.detach() for k, v in state.items()}
            logs, diverged = [], False
            for k in range(config.unroll):
                loss = task.loss(unflatten(theta, shapes), t + k)
                if not torch.isfinite(loss):
                    diverged = True
                    break
                if k > 0:
                    logs.append(bounded_log_loss(loss, log0))
                (grad,) = torch.autograd.grad(loss, theta, retain_graph=True)
                direction, state = net.step(grad.detach(), state, t + k + 1)
                theta = theta - log_lr.exp() * direction
            if not diverged:
                final = task.loss(unflatten(theta, shapes), t + config.unroll)
                if torch.isfinite(final):
                    logs.append(bounded_log_loss(final, log0))
                else:
                    diverged = True
            optimizer.zero_grad(set_to_none=True)
            record = {"step": step, "episode": episode, "task": getattr(task, "name", "task"), "meta_loss": None,
                      "lr": float(log_lr.detach().exp())}
            if logs:
                meta_loss = torch.stack(logs).mean()
                meta_loss.backward()
                norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
                if torch.isfinite(norm):
                    optimizer.step()
                else:
                    skipped += 1
                record["meta_loss"] = float(meta_loss.detach())
                recent = (recent + [record["meta_loss"]])[-25:]
            else:
                skipped += 1
            step += 1
            if on_step:
                on_step(record)
            if diverged:
                break
            flat, t = theta.detach(), t + config.unroll
        episode += 1
    final = sum(recent) / len(recent) if recent else None
    return L2OTrainResult(net.eval(), float(log_lr.detach().exp()), step, episode, skipped,
                          time.perf_counter() - started, final)
