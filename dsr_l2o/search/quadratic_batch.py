"""Many quadratic runs as one tensor program: every (constant, learning rate, task) at once.

The grow stage ranks hundreds of rules, each at its best learning rate per task. One run of a
20-d quadratic costs far more in per-operation overhead than in arithmetic, so all runs of one
rule share each tensor operation: parameters have shape ``(constants, lrs, tasks, dim)``, tasks
of smaller dimension are zero-padded and their padding is masked out of every update.
"""

from __future__ import annotations

import math

import torch

from .. import expr as ex
from ..errors import ConfigError
from ..grammar import Grammar
from .features import OperandTracker

CONSTANT = "__c"
"""Name of the operand that carries the batch of constants inside a batched formula."""
BLOWUP = 1e10
"""A run whose loss exceeds this multiple of its initial loss counts as diverged."""


class QuadraticBatch:
    """A fixed set of :class:`~dsr_l2o.tasks.QuadraticTask` runs from ``init(seed)``."""

    def __init__(self, tasks, steps: int, seed: int = 0, device="cpu"):
        from ..tasks.quadratic import QuadraticTask

        others = [t.name for t in tasks if not isinstance(t, QuadraticTask)]
        if not tasks or others:
            raise ConfigError(f"grow_tasks: the grow stage runs quadratic tasks only, got {', '.join(others) or 'none'}; "
                              "use a quadratic family such as hard_quadratics")
        count, dim = len(tasks), max(t.dim for t in tasks)
        self.steps, self.device = int(steps), torch.device(device)
        self.hessian = torch.zeros(count, dim, dim)
        self.center = torch.zeros(count, dim)
        self.mask = torch.zeros(count, dim)
        self.noise = torch.zeros(self.steps, count, dim)
        self.start = torch.zeros(count, dim)
        for i, task in enumerate(tasks):
            d = task.dim
            self.hessian[i, :d, :d] = task.hessian
            self.center[i, :d] = task.center
            self.mask[i, :d] = 1.0
            self.start[i, :d] = task.init(seed)[0]
            if task._noise is not None:
                rows = torch.arange(self.steps) % task._noise.shape[0]
                self.noise[:, i, :d] = task._noise[rows]
        for name in ("hessian", "center", "mask", "noise", "start"):
            setattr(self, name, getattr(self, name).to(self.device))

    @torch.no_grad()
    def losses(self, grammar: Grammar, rule: ex.Expr, lrs, constants=(0.0,)) -> torch.Tensor:
        """Losses of ``rule`` (which may read the operand ``__c``) of shape ``(steps, C, L, T)``.

        ``lrs`` is one grid ``(L,)`` for every task or one per task ``(L, T)``. A diverged run's
        losses are ``inf`` from the step it diverged on.
        """
        c = torch.as_tensor(constants, dtype=torch.float32, device=self.device).view(-1, 1, 1, 1)
        lr = torch.as_tensor(lrs, dtype=torch.float32, device=self.device)
        lr = lr.view(1, -1, 1, 1) if lr.dim() == 1 else lr.view(1, lr.shape[0], -1, 1)
        x = self.start.expand(c.shape[0], lr.shape[1], -1, -1).clone()
        tracker = OperandTracker(grammar, ex.variables(rule) - {CONSTANT})
        state = tracker.init(x)
        out = torch.empty(self.steps, *x.shape[:3], device=self.device)
        alive = torch.ones(x.shape[:3], dtype=torch.bool, device=self.device)
        for step in range(self.steps):
            diff = x - self.center - self.noise[step]
            grad = torch.einsum("tij,cltj->clti", self.hessian, diff)
            loss = 0.5 * (diff * grad).sum(-1)
            alive &= torch.isfinite(loss) & (step == 0 or loss <= BLOWUP * out[0].clamp_min(1e-30))
            out[step] = torch.where(alive, loss, torch.full_like(loss, math.inf))
            state, values = tracker.step(state, grad, x, step + 1)
            values[CONSTANT] = c
            update = grammar.evaluate(rule, values)
            update = torch.nan_to_num(torch.as_tensor(update, device=self.device).expand_as(x), 0.0, 0.0, 0.0)
            x = torch.where(alive.unsqueeze(-1), x - lr * update * self.mask, x)
        return out

    def final_log_losses(self, grammar: Grammar, rule: ex.Expr, lrs, constants=(0.0,), window: int | None = None):
        """``mean(log(loss_t / loss_0))`` over the last ``window`` steps (default a tenth of the
        run) of every run, shape ``(C, L, T)``; ``inf`` for a diverged run. The fair protocol
        likewise scores a run by its final losses."""
        losses = self.losses(grammar, rule, lrs, constants).double()
        window = window or max(1, self.steps // 10)
        logs = torch.log(losses.clamp_min(1e-30)) - torch.log(losses[0].clamp_min(1e-30))
        tail = logs[-window:].mean(0)
        return torch.where(torch.isfinite(losses[-window:]).all(0), tail, torch.full_like(tail, math.inf)).cpu()

    def tuned_scores(self, grammar: Grammar, rule: ex.Expr, lrs, constants=(0.0,), window: int | None = None):
        """Per constant: the mean over tasks of the best (over ``lrs``) final log loss, shape
        ``(C,)``; ``inf`` where every lr diverged on some task."""
        return self.final_log_losses(grammar, rule, lrs, constants, window).min(dim=1).values.mean(dim=-1)
