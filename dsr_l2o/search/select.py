"""From a trained relaxation to one formula: top-k discretisations, guards, fair scoring, snapping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .. import expr as ex
from ..evaluation.ratios import FLOOR, geometric_mean_ratio
from ..formula import Formula
from ..result import Candidate as Record
from .guards import degenerate_reason

SIMPLE_CONSTANTS = (0.1, 0.5, 0.9, 0.99, 1.0, 2.0, math.e, 10.0)
SNAP_TOLERANCE = 0.01


@dataclass
class Candidate:
    """One discrete rule with its validation scores (``ratio``: geometric mean of score / Adam's)."""

    formula: Formula
    raw_text: str
    log_prob: float | None
    rejected: str | None = None
    stage: str = "relaxation"  # or "grow"
    ratio: float = math.inf
    lr: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    lrs: dict[str, float | None] = field(default_factory=dict)
    seed_logs: list[float] = field(default_factory=list)
    """Per seed: the mean over tasks of log(score / Adam's), at each task's best lr."""

    @property
    def spread(self) -> float:
        """Seed-to-seed standard deviation of :attr:`seed_logs` (0 with one seed)."""
        n = len(self.seed_logs)
        if n < 2 or not all(map(math.isfinite, self.seed_logs)):
            return 0.0
        mean = sum(self.seed_logs) / n
        return math.sqrt(sum((x - mean) ** 2 for x in self.seed_logs) / (n - 1))

    def record(self) -> Record:
        """The typed record of this candidate for ``result.json``."""
        return Record(self.formula.text, self.raw_text, self.stage, self.log_prob, self.rejected, _finite(self.ratio),
                      self.lr, {k: _finite(v) for k, v in self.scores.items()}, dict(self.lrs), self.formula.size)

    def to_json(self) -> dict:
        return self.record().to_json()


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


class Scorer:
    """Fair-protocol scores of formulas on validation tasks, as ratios to tuned Adam."""

    def __init__(self, tasks, protocol, log: Callable[[str], None]):
        from ..engine import tune_batched
        from ..evaluation import get_baseline

        self.tasks, self.protocol, self.log, self._tune = tasks, protocol, log, tune_batched
        self.reference = {t.name: tune_batched(get_baseline("adam"), t, protocol).best_score for t in tasks}

    def score(self, candidate: Candidate) -> Candidate:
        """Score one candidate (see :meth:`score_many`)."""
        return self.score_many([candidate])[0]

    def score_many(self, candidates: list[Candidate]) -> list[Candidate]:
        """Tune every candidate on every task, all candidates of a task as one batched run."""
        from ..evaluation import formula_spec

        if not candidates:
            return []
        specs = [formula_spec(c.formula) for c in candidates]
        logs = [[] for _ in candidates]
        per_seed = [[[] for _ in self.protocol.seeds] for _ in candidates]
        for task in self.tasks:
            results = self._tune(specs, task, self.protocol)
            ref = max(self.reference[task.name], FLOOR)
            for k, (candidate, result) in enumerate(zip(candidates, results)):
                candidate.scores[task.name] = result.best_score
                candidate.lrs[task.name] = result.best_lr
                for s, score in enumerate(result.seed_scores.get(result.best_lr, [math.inf] * len(self.protocol.seeds))):
                    per_seed[k][s].append(_log_ratio(score, ref))
                if result.best_lr:
                    logs[k].append(math.log(result.best_lr))
        for candidate, seeds, lrs in zip(candidates, per_seed, logs):
            candidate.seed_logs = [sum(x) / len(x) for x in seeds]
            ratio = geometric_mean_ratio(candidate.scores.values(), (self.reference[t.name] for t in self.tasks))
            candidate.ratio = math.inf if ratio is None else ratio
            candidate.lr = float(f"{math.exp(sum(lrs) / len(lrs)):.3g}") if lrs else None
        return candidates


def _log_ratio(score: float, reference: float) -> float:
    return math.log(max(score, FLOOR) / reference) if math.isfinite(score) else math.inf


FINALIST_MARGIN = 1.25
"""Candidates within this factor of the best validation ratio are re-scored with more seeds."""
TIE_SEEDS = (0, 1, 2)


def decide(usable: list[Candidate], scorer: "Scorer", log: Callable[[str], None]) -> tuple[Candidate, "Scorer"]:
    """The chosen candidate, never by rounding: the finalists (within :data:`FINALIST_MARGIN` of
    the best ratio) are re-scored with :data:`TIE_SEEDS`; those whose mean log ratio is within the
    larger seed-to-seed spread of the leader's are tied, and the simplest of them wins (then the
    shortest text). Returns the choice and the scorer its scores come from."""
    from dataclasses import replace

    best = min(usable, key=lambda c: c.ratio)
    finalists = [c for c in usable if c.ratio <= best.ratio * FINALIST_MARGIN]
    if len(finalists) == 1:
        return best, scorer
    seeds = tuple(dict.fromkeys(tuple(scorer.protocol.seeds) + TIE_SEEDS))
    scorer = Scorer(scorer.tasks, replace(scorer.protocol, seeds=seeds), log)
    rescored = scorer.score_many([Candidate(c.formula, c.raw_text, c.log_prob, stage=c.stage) for c in finalists])
    leader = min(rescored, key=lambda c: sum(c.seed_logs) / len(c.seed_logs))
    mean = sum(leader.seed_logs) / len(leader.seed_logs)
    tied = [c for c in rescored
            if sum(c.seed_logs) / len(c.seed_logs) - mean <= max(c.spread, leader.spread)]
    chosen = min(tied, key=lambda c: (c.formula.size, len(c.formula.text), c.formula.text))
    log(f"finalists with {len(seeds)} seeds: " + ", ".join(
        f"{c.formula.text} {c.ratio:.4g} (spread {c.spread:.3f})" for c in rescored)
        + f"; tied: {', '.join(c.formula.text for c in tied)}; chosen: {chosen.formula.text}")
    return chosen, scorer


def unit_scale(node: ex.Expr) -> ex.Expr:
    """Drop a positive constant factor of the whole formula: the tuned step size absorbs it, and
    a leftover factor would only shift the formula against the learning-rate grid."""
    if isinstance(node, ex.Call) and node.op == "mul":
        a, b = node.args
        if isinstance(a, ex.Num) and a.value > 0:
            return unit_scale(b)
        if isinstance(b, ex.Num) and b.value > 0:
            return unit_scale(a)
        if isinstance(a, ex.Num) and a.value < 0:
            return ex.Call("neg", (unit_scale(b),))
    if isinstance(node, ex.Call) and node.op == "div" and isinstance(node.args[1], ex.Num) and node.args[1].value > 0:
        return unit_scale(node.args[0])
    if isinstance(node, ex.Call) and node.op == "neg":
        return ex.Call("neg", (unit_scale(node.args[0]),))
    if isinstance(node, ex.Call) and node.op in ("add", "sub"):
        factor = _common_factor(node.args)
        if factor:
            return ex.Call(node.op, tuple(_divide(a, factor) for a in node.args))
    return node


def _common_factor(args) -> float | None:
    factors = []
    for a in args:
        if isinstance(a, ex.Call) and a.op == "mul" and isinstance(a.args[0], ex.Num) and a.args[0].value > 0:
            factors.append(a.args[0].value)
        else:
            return None
    return min(factors) if factors else None


def _divide(node: ex.Expr, factor: float) -> ex.Expr:
    value = float(f"{node.args[0].value / factor:.6g}")
    return node.args[1] if value == 1.0 else ex.Call("mul", (ex.Num(value), node.args[1]))


def build_candidates(discretisations, grammar, probes, simplify) -> list[Candidate]:
    """Simplify each discretisation, drop duplicates and reject degenerate ones (with a reason)."""
    out, seen = [], set()
    for d in discretisations:
        formula = simplify(Formula(unit_scale(d.expr), grammar))
        rescaled = unit_scale(formula.expr)
        if rescaled != formula.expr:
            formula = simplify(Formula(rescaled, grammar))
        if formula.text in seen:
            continue
        seen.add(formula.text)
        out.append(Candidate(formula, d.text, d.log_prob, degenerate_reason(formula, probes)))
    return out


def snap_constants(candidate: Candidate, scorer: Scorer, simplify, log) -> Candidate:
    """Replace each constant by the nearest simple value (or drop a factor ~1) where the validation
    ratio changes by less than 1%; keep every change that passes."""
    best = candidate
    for value in sorted({n.value for n in ex.numbers(best.formula.expr)}, key=lambda v: -abs(v)):
        target = min(SIMPLE_CONSTANTS, key=lambda c: abs(math.log(abs(value)) - math.log(c)) if value else 0)
        target = math.copysign(target, value)
        if value == target or not math.isfinite(best.ratio):
            continue
        snapped = _replace(best.formula.expr, value, target)
        formula = simplify(Formula(snapped, best.formula.grammar))
        trial = scorer.score(Candidate(formula, best.raw_text, best.log_prob, stage=best.stage))
        change = abs(trial.ratio / best.ratio - 1) if math.isfinite(trial.ratio) else math.inf
        log(f"snap {ex.format_number(value)} -> {ex.format_number(target)}: {formula.text} "
            f"(ratio {trial.ratio:.4g} vs {best.ratio:.4g}, {'kept' if change < SNAP_TOLERANCE or trial.ratio < best.ratio else 'rejected'})")
        if change < SNAP_TOLERANCE or trial.ratio < best.ratio:
            best = trial
    return best


def _replace(node: ex.Expr, value: float, target: float) -> ex.Expr:
    if isinstance(node, ex.Num):
        return ex.Num(target) if node.value == value else node
    if isinstance(node, ex.Call):
        return ex.Call(node.op, tuple(_replace(a, value, target) for a in node.args))
    if isinstance(node, ex.Power):
        return ex.Power(_replace(node.base, value, target), node.exponent)
    return node
