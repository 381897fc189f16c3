"""From a trained relaxation to one formula: top-k discretisations, guards, fair scoring, snapping."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

from .. import expr as ex
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
        from ..evaluation import formula_spec

        spec = formula_spec(candidate.formula)
        logs, lrs = [], []
        for task in self.tasks:
            result = self._tune(spec, task, self.protocol)
            candidate.scores[task.name] = result.best_score
            candidate.lrs[task.name] = result.best_lr
            ref = self.reference[task.name]
            if not math.isfinite(result.best_score):
                logs.append(math.inf)
            else:
                logs.append(math.log(max(result.best_score, 1e-12) / max(ref, 1e-12)))
            if result.best_lr:
                lrs.append(math.log(result.best_lr))
        candidate.ratio = math.exp(sum(logs) / len(logs)) if all(map(math.isfinite, logs)) else math.inf
        candidate.lr = float(f"{math.exp(sum(lrs) / len(lrs)):.3g}") if lrs else None
        return candidate


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
