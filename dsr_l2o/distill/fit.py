r"""Fit a grammar's formulas to recorded teacher updates.

1. A soft :class:`~dsr_l2o.search.relaxation.RelaxedRule` (every candidate divided by its RMS,
   so operators of different scale mix on equal terms) times a learnable scale is regressed on
   the trace with the weighted relative loss

   .. math:: \frac{\sum_i w_i (\alpha f(x_i) - y_i)^2}{\sum_i w_i y_i^2}

   under temperature annealing and an entropy ramp, so the mixtures end near one-hot.
2. The argmax and its most probable alternatives are read off (``top_k``), with every
   ``unary(operand)`` of the grammar besides, simplified, and their constants refitted by least
   squares (scipy), the global factor :math:`\alpha` in closed form.
3. Each gets :math:`R^2 = 1 - \text{loss}`; the simplest formula within ``tolerance`` of the best
   :math:`R^2` comes first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .. import expr as ex
from ..formula import Formula
from ..search.discretize import top_k as read_top_k
from ..search.relaxation import RelaxedRule
from ..search.select import unit_scale
from .record import Trace

MAX_LSQ_ROWS = 20_000


@dataclass
class FitCandidate:
    """One formula with its fit: ``direction ~ alpha * formula`` explains ``r2`` of the updates."""

    formula: Formula
    raw_text: str
    alpha: float
    r2: float

    @property
    def complexity(self) -> int:
        return self.formula.size

    def to_json(self) -> dict:
        return {"formula": self.formula.text, "raw_formula": self.raw_text, "alpha": self.alpha,
                "r2": self.r2 if math.isfinite(self.r2) else None, "complexity": self.complexity}


def fit(trace: Trace, grammar, depth: int = 2, iterations: int = 300, batch: int = 4096, top_k: int = 8,
        tolerance: float = 0.01, seed: int = 0, log: Callable[[str], None] | None = None) -> list[FitCandidate]:
    """Candidates best first (see the module docstring); rejected or non-finite ones are dropped."""
    log = log or (lambda text: None)
    torch.manual_seed(seed)
    rule = RelaxedRule(grammar, depth=depth, init_lr=1.0, init_bias=2.0)
    missing = [n for n in rule.operand_names if n not in trace.operands]
    if missing:
        raise ValueError(f"trace lacks operands {missing}")
    _train(rule, trace, iterations, batch, seed, log)
    from ..simplify import simplify

    out, seen = [], set()
    for expr in [d.expr for d in read_top_k(rule, top_k)] + single_operand_formulas(rule):
        formula = _canonical(Formula(expr, grammar), simplify)
        if formula.text in seen or not formula.operands:
            continue
        seen.add(formula.text)
        raw = ex.to_text(expr)
        cand = refit_constants(formula, trace, raw)
        if cand.alpha < 0:  # the teacher steps along -formula: say so in the formula itself
            cand = refit_constants(_canonical(Formula(ex.Call("neg", (cand.formula.expr,)), grammar), simplify),
                                   trace, raw)
        refitted = _canonical(cand.formula, simplify)
        if refitted.text != cand.formula.text:
            cand = refit_constants(refitted, trace, raw)
        log(f"candidate {cand.formula.text}: R^2 {cand.r2:.4f}")
        if math.isfinite(cand.r2) and cand.formula.text not in {c.formula.text for c in out}:
            out.append(cand)
    return rank(out, tolerance)


def _canonical(formula: Formula, simplify) -> Formula:
    """Simplified, without a global positive factor (the fitted ``alpha`` carries the scale)."""
    formula = simplify(Formula(unit_scale(formula.expr), formula.grammar))
    rescaled = unit_scale(formula.expr)
    return simplify(Formula(rescaled, formula.grammar)) if rescaled != formula.expr else formula


def single_operand_formulas(rule: RelaxedRule) -> list[ex.Expr]:
    """Every ``unary(operand)`` of the grammar: the smallest rules are always tried, whatever the
    relaxation settled on (they cost one closed-form fit each)."""
    out = []
    for name in rule.operand_names:
        out.append(ex.Var(name))
        out += [ex.Call(op, (ex.Var(name),)) for op in rule.unary[1:]]
    return out


def rank(candidates: list[FitCandidate], tolerance: float = 0.01) -> list[FitCandidate]:
    """The simplest candidate within ``tolerance`` of the best R^2 first, then the rest by R^2."""
    if not candidates:
        return []
    best = max(c.r2 for c in candidates)
    good = sorted((c for c in candidates if c.r2 >= best - tolerance), key=lambda c: (c.complexity, -c.r2))
    rest = sorted((c for c in candidates if c.r2 < best - tolerance), key=lambda c: -c.r2)
    return good + rest


def _train(rule: RelaxedRule, trace: Trace, iterations: int, batch: int, seed: int, log) -> None:
    optimizer = torch.optim.Adam(rule.parameters(), lr=0.05)
    generator = torch.Generator().manual_seed(seed)
    for it in range(iterations):
        frac = it / max(iterations - 1, 1)
        temperature = 0.05**frac
        index = torch.randint(len(trace), (min(batch, len(trace)),), generator=generator)
        values, target, weight = trace.rows(index)
        values = {k: v.float() for k, v in values.items()}
        scales = rule.measure_scales(values, temperature)
        pred = rule.lr() * rule(values, temperature, scales)
        loss = (weight.float() * (pred - target.float()).square()).sum() / (weight * target.square()).sum().float()
        entropy = torch.stack([_entropy(logits, temperature) for _, logits in rule.slots()]).mean()
        objective = loss + 0.01 * frac * entropy
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(objective):
            continue
        objective.backward()
        torch.nn.utils.clip_grad_norm_(rule.parameters(), 1.0)
        optimizer.step()
        if it % 100 == 0 or it == iterations - 1:
            log(f"fit {it + 1}/{iterations}: relative error {loss.item():.4f} T {temperature:.3f}")


def _entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    logp = torch.log_softmax(logits / max(temperature, 1e-3), dim=-1)
    return -(logp.exp() * logp).sum()


def refit_constants(formula: Formula, trace: Trace, raw_text: str | None = None) -> FitCandidate:
    """Least-squares constants of ``formula`` (scipy) and the closed-form global factor."""
    from scipy.optimize import least_squares

    grammar = formula.grammar
    values = {k: v for k, v in trace.operands.items() if k in formula.state_operands}
    count = len(ex.numbers(formula.expr))
    rows = torch.randperm(len(trace), generator=torch.Generator().manual_seed(0))[:MAX_LSQ_ROWS]
    sub = {k: v[rows] for k, v in values.items()}

    def residuals(params, data, target, weight):
        f = _evaluate(grammar, _with_numbers(formula.expr, params), data, target)
        if not np.all(np.isfinite(f)):
            return np.full(target.shape, 1e3)
        alpha = _alpha(f, target, weight)
        return np.sqrt(weight) * (alpha * f - target) / math.sqrt(float(np.sum(weight * target**2)))

    target, weight = trace.direction.numpy(), trace.weight.numpy()
    sub_target, sub_weight = target[rows.numpy()], weight[rows.numpy()]
    params = np.array([n.value for n in ex.numbers(formula.expr)], dtype=np.float64)
    if count:
        try:
            solved = least_squares(residuals, params, args=(sub, sub_target, sub_weight), max_nfev=50 * count)
            trial = np.array([float(f"{x:.4g}") for x in solved.x])
            if np.sum(residuals(trial, sub, sub_target, sub_weight) ** 2) <= np.sum(
                    residuals(params, sub, sub_target, sub_weight) ** 2):
                params = trial
        except (ValueError, FloatingPointError):
            pass
    fitted = Formula(_with_numbers(formula.expr, params), grammar) if count else formula
    f = _evaluate(grammar, fitted.expr, values, target)
    if not np.all(np.isfinite(f)):
        return FitCandidate(fitted, raw_text or formula.text, math.nan, -math.inf)
    alpha = _alpha(f, target, weight)
    r2 = 1.0 - float(np.sum(weight * (alpha * f - target) ** 2) / np.sum(weight * target**2))
    return FitCandidate(fitted, raw_text or formula.text, float(f"{alpha:.6g}"), r2)


def _alpha(f: np.ndarray, target: np.ndarray, weight: np.ndarray) -> float:
    denominator = float(np.sum(weight * f * f))
    return float(np.sum(weight * f * target)) / denominator if denominator > 0 else 0.0


def _evaluate(grammar, node: ex.Expr, values: dict[str, torch.Tensor], like) -> np.ndarray:
    with torch.no_grad():
        out = grammar.evaluate(node, values)
    if isinstance(out, torch.Tensor):
        return out.double().numpy()
    return np.full(np.shape(like), float(out))


def _with_numbers(node: ex.Expr, values) -> ex.Expr:
    """``node`` with its numbers replaced, in walk order, by ``values``."""
    it = iter([float(v) for v in values])

    def walk(n):
        if isinstance(n, ex.Num):
            return ex.Num(next(it))
        if isinstance(n, ex.Call):
            return ex.Call(n.op, tuple(walk(a) for a in n.args))
        if isinstance(n, ex.Power):
            return ex.Power(walk(n.base), n.exponent)
        return n

    return walk(node)
