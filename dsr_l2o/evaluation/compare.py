"""Tune several optimizers on several tasks under one protocol and compare them.

The loss threshold of a task (for "steps to threshold") is the median of the compared optimizers'
best scores on it: roughly half of them reach it, and an optimizer whose score is at most the
threshold reaches it at the latest on its last step (see :func:`~.protocol.steps_to_threshold`).

Besides the ratio to a fixed reference (Adam), every optimizer is measured against the per-task
best tuned baseline: the bar a new rule has to clear. ``candidates`` names the optimizers under
test (e.g. a discovered formula); every other optimizer is a baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .baselines import OptimizerSpec
from .protocol import EvalProtocol, Progress, TuneResult
from .ratios import geometric_mean_ratio, score_ratio


@dataclass
class Comparison:
    """Results of :func:`compare`: ``results[task][optimizer]`` is a :class:`TuneResult`;
    ``candidates`` are the optimizers under test, every other one is a baseline."""

    protocol: EvalProtocol
    results: dict[str, dict[str, TuneResult]]
    thresholds: dict[str, float | None]
    candidates: tuple[str, ...] = ()

    @property
    def tasks(self) -> list[str]:
        return list(self.results)

    @property
    def optimizers(self) -> list[str]:
        return list(next(iter(self.results.values()))) if self.results else []

    @property
    def baselines(self) -> list[str]:
        """The optimizers that are not candidates, in order."""
        return [name for name in self.optimizers if name not in self.candidates]

    def rank(self, task: str, optimizer: str) -> int:
        """1 + the number of optimizers with a strictly better score on ``task``."""
        mine = self.results[task][optimizer].best_score
        return 1 + sum(r.best_score < mine for r in self.results[task].values())

    def ratio(self, task: str, optimizer: str, reference: str | None) -> float | None:
        """Best score of ``optimizer`` divided by that of ``reference`` (see
        :func:`~.ratios.score_ratio`; ``None`` if undefined)."""
        if reference is None or reference not in self.results[task]:
            return None
        return score_ratio(self.results[task][optimizer].best_score, self.results[task][reference].best_score)

    def geomean_ratio(self, optimizer: str, reference: str) -> float | None:
        """Geometric mean over tasks of :meth:`ratio` (``inf`` if it diverged anywhere)."""
        if any(reference not in per_task for per_task in self.results.values()):
            return None
        return geometric_mean_ratio([self.results[t][optimizer].best_score for t in self.tasks],
                                    [self.results[t][reference].best_score for t in self.tasks])

    def best_baseline(self, task: str) -> str | None:
        """The baseline with the best score on ``task`` (``None`` if every baseline diverged)."""
        results = [self.results[task][name] for name in self.baselines]
        if not results:
            return None
        best = min(results, key=lambda r: r.best_score)
        return best.optimizer if math.isfinite(best.best_score) else None

    def ratio_to_best(self, task: str, optimizer: str) -> float | None:
        """Score of ``optimizer`` over that of the best baseline of ``task``."""
        return self.ratio(task, optimizer, self.best_baseline(task))

    def geomean_ratio_to_best(self, optimizer: str) -> float | None:
        """Geometric mean over tasks of :meth:`ratio_to_best`."""
        best = [self.best_baseline(task) for task in self.tasks]
        if any(name is None for name in best):
            return None
        return geometric_mean_ratio([self.results[t][optimizer].best_score for t in self.tasks],
                                    [self.results[t][b].best_score for t, b in zip(self.tasks, best)])

    def winner(self, task: str) -> str | None:
        """The optimizer with the best score on ``task`` (``None`` if all diverged)."""
        best = min(self.results[task].values(), key=lambda r: r.best_score)
        return best.optimizer if math.isfinite(best.best_score) else None

    def to_json(self, reference: str = "adam") -> dict:
        """A JSON-ready dict (non-finite numbers become ``null``; ratios divide by ``reference``)."""
        from .report import comparison_json

        return comparison_json(self, reference)

    def table(self, reference: str = "adam", highlight: str | None = None) -> str:
        """A plain-text table per task (see :func:`~.report.format_table`)."""
        from .report import format_table

        return format_table(self, reference, highlight)


def loss_threshold(results: list[TuneResult]) -> float | None:
    """The median of the finite best scores (``None`` if there are none)."""
    finite = [r.best_score for r in results if math.isfinite(r.best_score)]
    return float(np.median(finite)) if finite else None


def compare(specs: list[OptimizerSpec], tasks: list, protocol: EvalProtocol | None = None,
            progress: Progress | None = None, candidates=(), known: dict | None = None,
            workers: int = 1) -> Comparison:
    """Tune every optimizer of ``specs`` on every task with the same ``protocol``.

    ``specs`` holds OptimizerSpecs or anything :func:`~.baselines.get_baseline` accepts (names,
    ``"module:Class"``, classes, factories). ``candidates`` names the specs under test; the others
    are the baselines they are ranked against. ``known[task][name]`` (see
    :func:`~.stored.read_stored_results`) is used instead of tuning that optimizer on that task.
    With ``workers`` > 1 the tasks are shared among forked processes, each task tuned whole in
    one (:func:`~dsr_l2o.workers.map_jobs`: the same values as in one process).
    """
    from .baselines import get_baseline

    protocol = protocol or EvalProtocol()
    specs = [get_baseline(spec) for spec in specs]
    _check_unique([s.name for s in specs], "optimizer")
    _check_unique([t.name for t in tasks], "task")
    if not specs or not tasks:
        raise ConfigError("compare needs at least one optimizer and one task")
    results: dict[str, dict[str, TuneResult]] = {}
    thresholds: dict[str, float | None] = {}
    from ..engine import tune_batched

    from ..workers import map_jobs

    known = known or {}
    todos = [[s for s in specs if s.name not in known.get(t.name, {}) or s.name in candidates] for t in tasks]
    parallel = workers > 1 and len(tasks) > 1

    def tune(k: int) -> list[TuneResult]:
        todo = todos[k]
        return tune_batched(todo, tasks[k], protocol, None if parallel else progress) if todo else []

    def done(k: int) -> None:
        if parallel and progress is not None:
            for _ in range(len(todos[k]) * protocol.runs_per_tune):
                progress(1)

    tuned_lists = map_jobs(tune, list(range(len(tasks))), workers, done)
    for task, todo, tuned_list in zip(tasks, todos, tuned_lists):
        stored = known.get(task.name, {})
        tuned = dict(zip([s.name for s in todo], tuned_list))
        per_task = {s.name: tuned[s.name] if s.name in tuned else stored[s.name] for s in specs}
        thresholds[task.name] = loss_threshold(list(per_task.values()))
        for result in per_task.values():
            result.set_threshold(thresholds[task.name])
        results[task.name] = per_task
    return Comparison(protocol, results, thresholds, tuple(candidates))


def _check_unique(names: list[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{what} {name!r} appears twice; list each {what} once")
        seen.add(name)
