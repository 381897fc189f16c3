"""The fair protocol: every optimizer gets the same learning-rate grid, seeds and steps.

A run trains a task from ``task.init(seed)`` (and, where the task offers ``with_seed``, on
``task.with_seed(seed)``'s data order) for ``steps`` steps at one learning rate, recording the training loss before each step. A run that
meets a non-finite loss stops at once and scores ``+inf``. Otherwise it scores the mean loss over
its last ``last_frac`` of steps; a learning rate scores the mean over seeds (``+inf`` if any seed
diverged), and :func:`tune` picks the learning rate with the lowest score. When that learning rate
sits at an edge of the grid, :func:`tune` keeps stepping past the edge, at the grid's own spacing,
while the score improves (at most ``extend_edges`` steps): the same rule for every optimizer, so
none is judged at a step size the grid merely cut off.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from ..errors import ConfigError, TaskError, shorten
from ..tasks.base import task_seed
from .baselines import OptimizerSpec, eval_mode

DEFAULT_LRS: tuple[float, ...] = tuple(float(f"{x:.3g}") for x in np.logspace(-4, 1, 16))
DEFAULT_TASKS = "suite_test"
"""The task set ``dsr-l2o evaluate`` reports on unless told: the suite's test tasks, held out from the default search."""
Progress = Callable[[int], object]


@dataclass(frozen=True)
class EvalProtocol:
    """What every optimizer is tuned with: the lr grid, the seeds, the horizon and the score window.

    ``steps=None`` uses each task's own ``steps``. ``extend_edges`` is how many extra learning
    rates :func:`tune` may try beyond an edge of ``lrs`` where the best one sits (0: never).
    """

    lrs: tuple[float, ...] = DEFAULT_LRS
    seeds: tuple[int, ...] = (0, 1, 2)
    steps: int | None = None
    last_frac: float = 0.1
    extend_edges: int = 3

    def __post_init__(self):
        lrs = tuple(float(lr) for lr in self.lrs)
        if not lrs or not all(math.isfinite(lr) and lr > 0 for lr in lrs):
            raise ConfigError("learning rates must be a non-empty list of positive numbers, e.g. 1e-3,1e-2,1e-1")
        if len(set(lrs)) != len(lrs):
            raise ConfigError("learning rates must differ; remove the duplicate")
        seeds = tuple(self.seeds)
        if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
            raise ConfigError("seeds must be a non-empty list of non-negative integers")
        if len(set(seeds)) != len(seeds):
            raise ConfigError("seeds must differ; remove the duplicate")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"steps must be a positive integer, not {self.steps!r}")
        if isinstance(self.extend_edges, bool) or not isinstance(self.extend_edges, int) or self.extend_edges < 0:
            raise ConfigError(f"extend_edges must be a non-negative integer, not {self.extend_edges!r}")
        if not (0 < self.last_frac <= 1):
            raise ConfigError(f"last_frac must be in (0, 1], not {self.last_frac!r}")
        object.__setattr__(self, "lrs", tuple(sorted(lrs)))
        object.__setattr__(self, "seeds", seeds)

    def steps_for(self, task) -> int:
        """The horizon used on ``task``."""
        return int(self.steps if self.steps is not None else task.steps)

    def beyond(self, lr: float) -> float | None:
        """The next learning rate past the grid edge at ``lr`` (same log spacing), or ``None``
        when ``lr`` is not at an edge or the grid has a single value."""
        lrs = self.lrs
        if len(lrs) < 2 or lrs[0] < lr < lrs[-1]:
            return None
        if lr >= lrs[-1]:
            return float(f"{lr * lrs[-1] / lrs[-2]:.3g}")
        return float(f"{lr * lrs[0] / lrs[1]:.3g}")

    def window(self, steps: int) -> int:
        """How many final steps the score averages (at least one)."""
        return max(1, math.ceil(self.last_frac * steps - 1e-9))

    @property
    def runs_per_tune(self) -> int:
        """Training runs one :func:`tune` call makes (for progress bars)."""
        return len(self.lrs) * len(self.seeds)

    def to_json(self) -> dict:
        return {"lrs": list(self.lrs), "seeds": list(self.seeds), "steps": self.steps, "last_frac": self.last_frac,
                "extend_edges": self.extend_edges}


@dataclass
class Run:
    """One training run: the losses it recorded, whether it diverged, and its final parameters."""

    losses: list[float]
    diverged: bool
    params: list[torch.Tensor]


def with_data_seed(task, seed: int):
    """``task.with_seed(seed)`` where the task offers it (e.g. a new minibatch order), else ``task``."""
    own = task_seed(task)
    if own is None or own == seed or not hasattr(task, "with_seed"):
        return task
    return task.with_seed(seed)


def train(spec: OptimizerSpec, task, lr: float, seed: int, steps: int) -> Run:
    """Train ``task`` from ``task.init(seed)`` with ``spec`` at ``lr``; stop at a non-finite loss.

    After the last step the optimizer is put in eval mode (:func:`~.baselines.eval_mode`; e.g. a
    schedule-free optimizer moves the parameters to its averaged point), so ``Run.params`` is what
    the held-out metric should see.
    """
    torch.manual_seed(seed)
    where = f"task {shorten(getattr(task, 'name', type(task).__name__))!r}"
    try:
        initial = list(task.init(seed))
    except Exception as err:
        raise TaskError(f"{where}: init(seed={seed}) raised {type(err).__name__}: {shorten(err, 120)}") from None
    if not initial or not all(isinstance(p, torch.Tensor) and p.is_floating_point() for p in initial):
        raise TaskError(f"{where}: init(seed={seed}) must return a non-empty list of floating-point tensors")
    params = [p.detach().clone().requires_grad_(True) for p in initial]
    optimizer = spec.make(params, lr)
    losses: list[float] = []
    for step in range(steps):
        at = f"{where} with optimizer {spec.name!r} at lr {lr:g}, step {step}"
        optimizer.zero_grad(set_to_none=True)
        try:
            loss = task.loss(params, step)
        except Exception as err:
            raise TaskError(f"{at}: loss raised {type(err).__name__}: {shorten(err, 120)}") from None
        value = _checked_loss(loss, at)
        losses.append(value)
        if not math.isfinite(value):
            if step == 0:
                raise TaskError(f"{where}: the loss is {value} at the initial parameters (seed {seed}), before any "
                                "optimizer step; the task is broken: fix its init or loss")
            return Run(losses, True, params)
        loss.backward()
        optimizer.step()
    eval_mode(optimizer)
    return Run(losses, False, params)


def check_task(task, seeds) -> None:
    """Raise the one-line :class:`TaskError` :func:`train` would raise for a broken ``task``
    (its init or loss fails, or the loss is not a finite scalar of the parameters at the start)."""
    still = OptimizerSpec("(task check)", lambda params, lr: torch.optim.SGD(params, lr=lr))
    for seed in seeds:
        train(still, with_data_seed(task, seed), 0.0, seed, 1)


def _checked_loss(loss, at: str) -> float:
    """The loss as a float, or a TaskError saying why it cannot be trained on."""
    if not isinstance(loss, torch.Tensor):
        raise TaskError(f"{at}: loss returned a {type(loss).__name__}, not a torch tensor computed from the parameters")
    if loss.numel() != 1:
        raise TaskError(f"{at}: loss returned a tensor of shape {list(loss.shape)}; it must be a scalar (use .mean())")
    if not loss.requires_grad:
        raise TaskError(f"{at}: loss does not depend on the parameters (it is detached); compute it from them")
    return float(loss.detach())


def run_score(run: Run, window: int) -> float:
    """Mean loss over the last ``window`` recorded steps; ``+inf`` for a diverged run."""
    if run.diverged:
        return math.inf
    return float(np.mean(run.losses[-window:]))


def steps_to_threshold(curve, threshold: float | None, window: int) -> int | None:
    """Steps until the trailing mean of ``curve`` (over up to ``window`` losses) is ``<= threshold``.

    The trailing mean uses the same window as the score, so a run whose score is at most the
    threshold reaches it at the latest on its last step. ``None`` if it never does.
    """
    if curve is None or threshold is None or not math.isfinite(threshold):
        return None
    values = np.asarray(curve, dtype=np.float64)
    sums = np.concatenate([[0.0], np.cumsum(values)])
    ends = np.arange(1, len(values) + 1)
    starts = np.maximum(ends - window, 0)
    trailing = (sums[ends] - sums[starts]) / (ends - starts)
    hits = np.nonzero(trailing <= threshold + 1e-9 * abs(threshold))[0]  # a sum in another order may round up
    return int(hits[0]) + 1 if hits.size else None


@dataclass
class TuneResult:
    """One optimizer tuned on one task.

    ``curve`` is the loss per step averaged over seeds at ``best_lr`` (``None`` when every lr
    diverged); ``heldout`` averages ``task.heldout(params)`` over seeds at ``best_lr`` where the
    task has a held-out metric. ``steps_to_threshold`` is filled in for a given ``threshold``.
    """

    optimizer: str
    task: str
    steps: int
    window: int
    best_lr: float | None
    best_score: float
    scores_by_lr: dict[float, float]
    seed_scores: dict[float, list[float]]
    curve: list[float] | None
    heldout: dict[str, float] | None = None
    threshold: float | None = None
    steps_to_threshold: int | None = None
    seconds: float = 0.0
    formula: str | None = None

    def set_threshold(self, threshold: float | None) -> None:
        """Record ``threshold`` and the steps the best-lr curve needs to reach it."""
        self.threshold = threshold
        self.steps_to_threshold = steps_to_threshold(self.curve, threshold, self.window)

    @property
    def diverged(self) -> bool:
        """True when every learning rate diverged on some seed."""
        return not math.isfinite(self.best_score)

    def to_json(self) -> dict:
        """Every field, JSON-ready (non-finite scores as ``null``, lr keys as strings); see :meth:`from_json`."""
        def num(value):
            return value if value is None or math.isfinite(value) else None

        data = {k: getattr(self, k) for k in self.__dataclass_fields__}
        data["best_score"] = num(self.best_score)
        data["scores_by_lr"] = {repr(lr): num(v) for lr, v in self.scores_by_lr.items()}
        data["seed_scores"] = {repr(lr): [num(v) for v in vs] for lr, vs in self.seed_scores.items()}
        if self.curve is not None:
            data["curve"] = [num(v) for v in self.curve]
        return data

    @classmethod
    def from_json(cls, data: dict) -> "TuneResult":
        """The result :meth:`to_json` wrote (``null`` scores read back as ``inf``)."""
        def score(value):
            return math.inf if value is None else float(value)

        fields = dict(data)
        fields["best_score"] = score(data["best_score"])
        fields["scores_by_lr"] = {float(lr): score(v) for lr, v in data["scores_by_lr"].items()}
        fields["seed_scores"] = {float(lr): [score(v) for v in vs] for lr, vs in data["seed_scores"].items()}
        return cls(**{k: v for k, v in fields.items() if k in cls.__dataclass_fields__})


def heldout_metrics(task, params) -> dict[str, float] | None:
    """``task.heldout(params)`` as floats, ``None`` for a task without a held-out metric."""
    if not hasattr(task, "heldout"):
        return None
    with torch.no_grad():
        metrics = task.heldout([p.detach() for p in params])
    return {k: float(v) for k, v in metrics.items()} or None


def tune(spec: OptimizerSpec, task, protocol: EvalProtocol | None = None,
         progress: Progress | None = None, threshold: float | None = None) -> TuneResult:
    """Run ``spec`` on ``task`` at every lr and seed of ``protocol``; return the best lr's result.

    ``spec`` is an OptimizerSpec or anything :func:`~.baselines.get_baseline` accepts.

    Where the best lr is at an edge of the grid, lrs beyond that edge are tried while the score
    improves (``protocol.extend_edges`` at most). ``progress(1)`` is called after each run on the
    grid. Ties go to the smaller learning rate.
    """
    from .baselines import get_baseline

    spec = get_baseline(spec)
    protocol = protocol or EvalProtocol()
    steps = protocol.steps_for(task)
    window = protocol.window(steps)
    seeded = {seed: with_data_seed(task, seed) for seed in protocol.seeds}
    start = time.perf_counter()
    scores: dict[float, float] = {}
    seed_scores: dict[float, list[float]] = {}
    best_lr, best_score, best_runs = None, math.inf, None

    def attempt(lr: float, report: bool) -> bool:
        nonlocal best_lr, best_score, best_runs
        runs = []
        for seed in protocol.seeds:
            runs.append(train(spec, seeded[seed], lr, seed, steps))
            if report and progress is not None:
                progress(1)
        seed_scores[lr] = [run_score(run, window) for run in runs]
        scores[lr] = float(np.mean(seed_scores[lr])) if all(map(math.isfinite, seed_scores[lr])) else math.inf
        improved = scores[lr] < best_score
        if improved:
            best_lr, best_score, best_runs = lr, scores[lr], runs
        return improved

    for lr in protocol.lrs:
        attempt(lr, True)
    for _ in range(protocol.extend_edges):
        if best_lr is None or (nxt := protocol.beyond(best_lr)) is None or nxt in scores:
            break
        if not attempt(nxt, False):
            break
    scores = dict(sorted(scores.items()))
    seed_scores = dict(sorted(seed_scores.items()))
    curve = heldout = None
    if best_runs is not None:
        curve = np.mean([run.losses for run in best_runs], axis=0).tolist()
        metrics = [heldout_metrics(seeded[seed], run.params) for seed, run in zip(protocol.seeds, best_runs)]
        if metrics[0] is not None:
            heldout = {key: float(np.mean([m[key] for m in metrics])) for key in metrics[0]}
    result = TuneResult(spec.name, task.name, steps, window, best_lr, best_score, scores, seed_scores,
                        curve, heldout, seconds=time.perf_counter() - start, formula=spec.formula)
    result.set_threshold(threshold)
    return result
