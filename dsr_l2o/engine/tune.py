"""``tune_batched``: the protocol's :func:`~dsr_l2o.evaluation.protocol.tune` for many optimizers
at once, every learning rate and seed of an optimizer family trained as one batch.

Formula optimizers (anything whose ``make`` builds a :class:`~dsr_l2o.optimizer.SymbolicOptimizer`)
run on the stacked flat parameter tensor (:mod:`.formula_step`); torch.optim optimizers whose step
is elementwise and linear in lr (Adam, SGD, RMSprop, ...) run as one instance on stacked
parameters (:mod:`.stacked_optim`), any other with one instance per run; all with a batched loss
(:func:`.runs.train_optimizers`). Results are the
protocol's :class:`~dsr_l2o.evaluation.protocol.TuneResult`, with the same edge-extension rule:
where the best lr sits at an edge of the grid, lrs beyond it are tried while the score improves.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import ConfigError
from ..evaluation.baselines import OptimizerSpec, formula_spec
from ..evaluation.protocol import EvalProtocol, Progress, TuneResult, check_task, heldout_metrics, with_data_seed
from ..formula import Formula
from .runs import BatchRuns, train_formulas, train_optimizers
from .stacked_optim import stackable


@dataclass
class _Entry:
    """What :func:`tune_batched` knows about one optimizer while it tunes it."""

    spec: OptimizerSpec
    formula: Formula | None
    weight_decay: float = 0.0
    scores: dict[float, float] = field(default_factory=dict)
    seed_scores: dict[float, list[float]] = field(default_factory=dict)
    best_lr: float | None = None
    best_score: float = math.inf
    best: tuple[BatchRuns, int] | None = None
    extending: bool = True
    stacked: bool = False
    key: tuple = ()
    """What its runs are filed under in the memo."""


def as_spec(item) -> OptimizerSpec:
    """An :class:`OptimizerSpec` for a spec, a :class:`Formula` or a formula string (default grammar)."""
    if isinstance(item, OptimizerSpec):
        return item
    if isinstance(item, (Formula, str)):
        return formula_spec(item)
    raise ConfigError(f"tune_batched takes optimizer specs, formulas or formula strings, not {type(item).__name__}")


def _probe(spec: OptimizerSpec) -> tuple[Formula | None, float]:
    """The formula and weight decay of a formula optimizer (``None`` for anything else)."""
    from ..optimizer import SymbolicOptimizer

    optimizer = spec.make([torch.zeros(1, requires_grad=True)], 1e-3)
    if type(optimizer) is SymbolicOptimizer and len(optimizer.param_groups) == 1:
        return optimizer.formula, float(optimizer.param_groups[0]["weight_decay"])
    return None, 0.0


def _memo_key(entry: _Entry, steps: int, window: int) -> tuple:
    """The same for two entries that train alike (name, formula, weight decay) under one protocol."""
    formula = entry.formula
    return (entry.spec.name, None if formula is None else (formula.text, formula.grammar.key), entry.weight_decay,
            steps, window)


def _run(entries: list[_Entry], lrs: list[list[float]], task, protocol: EvalProtocol, steps: int, memo: dict):
    """Train every ``(entry, lr)`` pair on the protocol's seeds that ``memo`` has no score of;
    returns ``(runs, member index)`` per pair, in order (``None`` where the memo had them all)."""
    out: list[list[tuple[BatchRuns, int] | None]] = [[None] * len(lrs[i]) for i in range(len(entries))]
    groups: dict = {}
    for i, entry in enumerate(entries):
        family = ("formula", entry.formula.grammar) if entry.formula is not None else ("torch", entry.stacked)
        for j, lr in enumerate(lrs[i]):
            seeds = tuple(s for s in protocol.seeds if (entry.key, lr, s) not in memo)
            if seeds:
                groups.setdefault((family, seeds), []).append((i, j, lr))
    for (_, seeds), pairs in groups.items():
        used = list(dict.fromkeys(i for i, _, _ in pairs))
        members = [(used.index(i), lr) for i, _, lr in pairs]
        if entries[used[0]].formula is not None:
            runs = train_formulas([entries[i].formula for i in used], task, members, seeds,
                                  steps, [entries[i].weight_decay for i in used])
        else:
            runs = train_optimizers([entries[i].spec.make for i in used], task, members,
                                    seeds, steps, stacked=entries[used[0]].stacked)
        for r, (i, j, _) in enumerate(pairs):
            out[i][j] = (runs, r)
    return out


def _score(entry: _Entry, lr: float, trained: tuple[BatchRuns, int] | None, window: int,
           protocol: EvalProtocol, memo: dict) -> bool:
    if trained is not None:
        runs, r = trained
        for seed, score in zip(runs.seeds, runs.scores(window)[:, r]):
            memo[(entry.key, lr, seed)] = float(score)
    seed_scores = [memo[(entry.key, lr, seed)] for seed in protocol.seeds]
    entry.seed_scores[lr] = seed_scores
    entry.scores[lr] = float(np.mean(seed_scores)) if all(map(math.isfinite, seed_scores)) else math.inf
    improved = entry.scores[lr] < entry.best_score
    if improved:
        whole = trained is not None and trained[0].seeds == tuple(protocol.seeds)
        entry.best_lr, entry.best_score, entry.best = lr, entry.scores[lr], trained if whole else None
    return improved


def _result(entry: _Entry, task, protocol: EvalProtocol, steps: int, window: int, seconds: float,
            threshold: float | None) -> TuneResult:
    curve = heldout = None
    if entry.best is not None:
        runs, r = entry.best
        curve = np.mean([runs.curve(s, r) for s in range(len(runs.seeds))], axis=0).tolist()
        metrics = [heldout_metrics(with_data_seed(task, seed), runs.final[s][r]) for s, seed in enumerate(runs.seeds)]
        if metrics[0] is not None:
            heldout = {key: float(np.mean([m[key] for m in metrics])) for key in metrics[0]}
    result = TuneResult(entry.spec.name, task.name, steps, window, entry.best_lr, entry.best_score,
                        dict(sorted(entry.scores.items())), dict(sorted(entry.seed_scores.items())),
                        curve, heldout, seconds=seconds, formula=entry.spec.formula)
    result.set_threshold(threshold)
    return result


def tune_batched(spec_or_formulas, task, protocol: EvalProtocol | None = None,
                 progress: Progress | None = None, threshold: float | None = None, memo: dict | None = None):
    """Tune one optimizer or a list of them on ``task`` exactly as :func:`protocol.tune` does.

    ``spec_or_formulas`` is an :class:`OptimizerSpec`, a :class:`Formula`, a formula string, or a
    list of these; the result is a :class:`TuneResult` or a list of them in the same order. All
    lrs x seeds of all formula optimizers of one grammar train as one batch, and so do all other
    optimizers; then each edge-extension round is one more batch. ``seconds`` is each
    optimizer's share of the time. ``progress(1)`` is called once per run on the grid.

    ``memo``, a dict the caller keeps for this task, gets the score of every run, keyed by
    optimizer, lr and seed; runs it already has are not trained again (more seeds for the same
    optimizers train only the new ones). A result whose best lr was not trained in this call on
    all its seeds has no ``curve`` and no held-out metrics.
    """
    single = not isinstance(spec_or_formulas, (list, tuple))
    items = [spec_or_formulas] if single else list(spec_or_formulas)
    if not items:
        raise ConfigError("tune_batched needs at least one optimizer")
    protocol = protocol or EvalProtocol()
    check_task(task, protocol.seeds)
    steps, start = protocol.steps_for(task), time.perf_counter()
    window = protocol.window(steps)
    entries = [_Entry(spec, *_probe(spec)) for spec in map(as_spec, items)]
    for i, entry in enumerate(entries):
        entry.stacked = entry.formula is None and stackable(entry.spec.make)
        entry.key = (i,) if memo is None else _memo_key(entry, steps, window)
    memo = {} if memo is None else memo
    grid = list(protocol.lrs)
    for entry, pairs in zip(entries, _run(entries, [grid] * len(entries), task, protocol, steps, memo)):
        for lr, trained in zip(grid, pairs):
            _score(entry, lr, trained, window, protocol, memo)
    if progress is not None:
        for _ in range(len(entries) * protocol.runs_per_tune):
            progress(1)
    for _ in range(protocol.extend_edges):
        nexts = []
        for entry in entries:
            nxt = None if entry.best_lr is None or not entry.extending else protocol.beyond(entry.best_lr)
            if nxt is None or nxt in entry.scores:
                entry.extending = False
                nxt = None
            nexts.append([] if nxt is None else [nxt])
        if not any(nexts):
            break
        for entry, lrs, pairs in zip(entries, nexts, _run(entries, nexts, task, protocol, steps, memo)):
            if lrs and not _score(entry, lrs[0], pairs[0], window, protocol, memo):
                entry.extending = False
    seconds = (time.perf_counter() - start) / len(entries)
    results = [_result(e, task, protocol, steps, window, seconds, threshold) for e in entries]
    return results[0] if single else results
