"""Tune several optimizers on several tasks under one protocol and compare them.

The loss threshold of a task (for "steps to threshold") is the median of the compared optimizers'
best scores on it: roughly half of them reach it, and an optimizer whose score is at most the
threshold reaches it at the latest on its last step (see :func:`~.protocol.steps_to_threshold`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .baselines import OptimizerSpec
from .protocol import EvalProtocol, Progress, TuneResult, tune


@dataclass
class Comparison:
    """Results of :func:`compare`: ``results[task][optimizer]`` is a :class:`TuneResult`."""

    protocol: EvalProtocol
    results: dict[str, dict[str, TuneResult]]
    thresholds: dict[str, float | None]

    @property
    def tasks(self) -> list[str]:
        return list(self.results)

    @property
    def optimizers(self) -> list[str]:
        return list(next(iter(self.results.values()))) if self.results else []

    def rank(self, task: str, optimizer: str) -> int:
        """1 + the number of optimizers with a strictly better score on ``task``."""
        mine = self.results[task][optimizer].best_score
        return 1 + sum(r.best_score < mine for r in self.results[task].values())

    def ratio(self, task: str, optimizer: str, reference: str) -> float | None:
        """Best score of ``optimizer`` divided by that of ``reference`` (``None`` if undefined)."""
        if reference not in self.results[task]:
            return None
        mine = self.results[task][optimizer].best_score
        ref = self.results[task][reference].best_score
        if not math.isfinite(ref) or ref <= 0:
            return None
        return mine / ref

    def geomean_ratio(self, optimizer: str, reference: str) -> float | None:
        """Geometric mean over tasks of :meth:`ratio` (``inf`` if it diverged anywhere)."""
        ratios = [self.ratio(task, optimizer, reference) for task in self.tasks]
        if not ratios or any(r is None for r in ratios):
            return None
        if any(not math.isfinite(r) for r in ratios):
            return math.inf
        if any(r <= 0 for r in ratios):
            return None
        return float(np.exp(np.mean(np.log(ratios))))

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
            progress: Progress | None = None) -> Comparison:
    """Tune every optimizer of ``specs`` on every task with the same ``protocol``."""
    protocol = protocol or EvalProtocol()
    _check_unique([s.name for s in specs], "optimizer")
    _check_unique([t.name for t in tasks], "task")
    if not specs or not tasks:
        raise ConfigError("compare needs at least one optimizer and one task")
    results: dict[str, dict[str, TuneResult]] = {}
    thresholds: dict[str, float | None] = {}
    for task in tasks:
        per_task = {spec.name: tune(spec, task, protocol, progress) for spec in specs}
        thresholds[task.name] = loss_threshold(list(per_task.values()))
        for result in per_task.values():
            result.set_threshold(thresholds[task.name])
        results[task.name] = per_task
    return Comparison(protocol, results, thresholds)


def _check_unique(names: list[str], what: str) -> None:
    seen = set()
    for name in names:
        if name in seen:
            raise ConfigError(f"{what} {name!r} appears twice; list each {what} once")
        seen.add(name)
