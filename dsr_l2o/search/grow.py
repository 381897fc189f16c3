r"""The grow stage: one-term corrections of a chosen rule, ranked on hard quadratics.

The relaxation settles on single terminals (``m``, ``m_tilde``): its sampled straight-through
meta-gradient favours the steepest-descent direction, so composite rules are out of its reach
(``docs/search.md``). Growing ranks the first stage's candidates on an aligned task family, takes
the best, :math:`B`, and tries

.. math:: B + c\,t, \qquad c \in \pm\texttt{grow\_constants},

for every term :math:`t` of the grammar that has the same scale as :math:`B` (``B * s``, ``s * u``
and ``u``, where ``s`` is a scale-free term such as ``sign(g)``, ``sign(g) * sign(m)`` or
``m_tilde`` and ``u`` a term of :math:`B`'s degree such as ``abs(m)``). The scale is measured,
not declared: a term's degree is how it grows when the gradients are multiplied by 10.

Each correction is scored as the fair protocol scores a rule, on a task family whose ranking of
fixed rules agrees with the protocol's (``benchmarks/objective_alignment.md``): the best final
log loss over a learning-rate grid, per task, averaged over the tasks of ``grow_tasks``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch

from .. import expr as ex
from ..formula import Formula
from ..grammar import Grammar
from ..layout import reads_weights_or_time
from .features import OperandTracker
from .quadratic_batch import CONSTANT, QuadraticBatch

PROBE_STEPS = 30
PROBE_SIZE = 256
SCALE = 10.0


@dataclass
class Grown:
    """One correction ``base + constant * term`` and its score (lower is better)."""

    formula: Formula
    term: str
    constant: float
    score: float

    def to_json(self) -> dict:
        return {"formula": self.formula.text, "term": self.term, "constant": self.constant,
                "score": self.score if math.isfinite(self.score) else None}


def _operand_values(grammar: Grammar, scale: float, seed: int) -> dict[str, torch.Tensor]:
    """Every operand after ``PROBE_STEPS`` random gradients multiplied by ``scale``."""
    gen = torch.Generator().manual_seed(seed)
    grads = torch.randn(PROBE_STEPS, PROBE_SIZE, generator=gen, dtype=torch.float64)
    grads = grads * torch.logspace(-1, 0.5, PROBE_SIZE, dtype=torch.float64)
    param = torch.randn(PROBE_SIZE, generator=gen, dtype=torch.float64)
    tracker = OperandTracker(grammar, grammar.operands)
    state, values = tracker.init(param), {}
    for step in range(PROBE_STEPS):
        state, values = tracker.step(state, scale * grads[step], param, step + 1)
    return values


class Probe:
    """Operand values at two gradient scales: fingerprints and degrees of expressions."""

    def __init__(self, grammar: Grammar, seed: int = 0):
        self.grammar = grammar
        self.small = _operand_values(grammar, 1.0, seed)
        self.large = _operand_values(grammar, SCALE, seed)

    def _value(self, node: ex.Expr, values) -> torch.Tensor:
        out = torch.as_tensor(self.grammar.evaluate(node, values), dtype=torch.float64)
        return out.expand(PROBE_SIZE)

    def degree(self, node: ex.Expr) -> float | None:
        """``d`` with ``f(10 g) = 10**d f(g)`` on every probe (a multiple of 1/2), else ``None``."""
        a, b = self._value(node, self.small), self._value(node, self.large)
        ok = torch.isfinite(a) & torch.isfinite(b) & (a.abs() > 1e-12) & (b.abs() > 1e-12)
        if float(ok.double().mean()) < 0.9 or not bool((torch.sign(a[ok]) == torch.sign(b[ok])).all()):
            return None
        ratios = torch.log(b[ok].abs() / a[ok].abs()) / math.log(SCALE)
        degree = round(float(ratios.median()) * 2) / 2
        return degree if float((ratios - degree).abs().max()) < 1e-3 else None

    def fingerprint(self, node: ex.Expr) -> tuple | None:
        """Rounded values on the probes (``None`` if not finite or constant)."""
        value = self._value(node, self.small)[:64]
        if not bool(torch.isfinite(value).all()) or float(value.std()) < 1e-9:
            return None
        return tuple(float(f"{v:.6g}") for v in value.tolist())


def unary_operators(grammar: Grammar) -> list[str]:
    """The grammar's unary operators, its one-argument custom operators included (no ``neg``)."""
    custom = [name for name, (args, _) in grammar.custom.items() if len(args) == 1]
    return [op for op in dict.fromkeys([*grammar.unary, *custom]) if op != "neg"]


def correction_terms(grammar: Grammar, base: ex.Expr, probe: Probe | None = None) -> list[ex.Expr]:
    """Every distinct term ``t`` of the grammar with the scale of ``base`` (see the module doc).

    Terms read the gradient's features only (no ``param`` or ``step`` operands); two terms with
    the same values on the probes are one. Empty if ``base`` has no single scale or the grammar
    has no ``add`` and ``mul`` to write ``base + c * t`` with.
    """
    if not {"add", "mul"} <= set(grammar.binary):
        return []
    probe = probe or Probe(grammar)
    degree = probe.degree(base)
    if degree is None:
        return []
    operands = [ex.Var(n) for n, o in grammar.operands.items() if not reads_weights_or_time(o)]
    singles = operands + [ex.Call(op, (v,)) for op in unary_operators(grammar) for v in operands]
    by_degree: dict[float, list[ex.Expr]] = {}
    for node in singles:
        d = probe.degree(node)
        if d is not None and probe.fingerprint(node) is not None:
            by_degree.setdefault(d, []).append(node)
    free = by_degree.get(0.0, [])
    modulators = free + [ex.Call("mul", pair) for pair in itertools.combinations_with_replacement(free, 2)]
    same = by_degree.get(degree, [])
    candidates = same + [ex.Call("mul", (s, u)) for s in free for u in same]
    candidates += [ex.Call("mul", (base, s)) for s in modulators]
    terms, seen = [], {probe.fingerprint(base)}
    for node in candidates:
        key = probe.fingerprint(node)
        negated = None if key is None else tuple(-v for v in key)
        if key is None or key in seen or negated in seen:
            continue
        seen.add(key)
        terms.append(node)
    return terms


COARSE_LRS = tuple(10 ** (k / 4) for k in range(-24, 13))
"""Where the base's best learning rate per task is looked for: 1e-6 to 1e3, four per decade."""
WINDOW = tuple(10 ** (k / 8) for k in range(-8, 5))
"""Every rule is tuned over the base's best lr per task times these: /10 to x3.2, eight per
decade. A fine grid matters: near the edge of stability a coarse one decides the ranking."""


def lr_windows(batch: QuadraticBatch, base: Formula) -> torch.Tensor:
    """Per task, the fine lr grid around the base's best lr, shape ``(len(WINDOW), tasks)``."""
    tail = batch.final_log_losses(base.grammar, base.expr, COARSE_LRS)[0]
    best = torch.tensor(COARSE_LRS, dtype=torch.float64)[tail.argmin(dim=0)]
    return torch.tensor(WINDOW, dtype=torch.float64).view(-1, 1) * best.view(1, -1)


def _factors(node: ex.Expr) -> list[ex.Expr]:
    if isinstance(node, ex.Call) and node.op == "mul":
        return _factors(node.args[0]) + _factors(node.args[1])
    return [node]


def _scaled(constant: float, term: ex.Expr) -> ex.Expr:
    """``constant * a * b * ...`` as a left-nested product, which prints without parentheses."""
    out: ex.Expr = ex.Num(constant)
    for factor in _factors(term):
        out = ex.Call("mul", (out, factor))
    return out


def grow(bases, tasks, steps: int, constants, seed: int = 0, device="cpu", log=None) -> list[Grown]:
    """Rank ``bases`` and the corrections ``B + c * t`` of the best of them, ``B``.

    Every term ``t`` of :func:`correction_terms` is tried with each ``c`` in ``±constants``. A
    rule's score is the mean over ``tasks`` of its best final log loss over a fine lr grid per task
    around its base's best lr (:func:`lr_windows`). Returns every base (constant 0) and each
    term at its best constant, best first.
    """
    log = log or (lambda text: None)
    bases = [bases] if isinstance(bases, Formula) else list(bases)
    batch = QuadraticBatch(tasks, steps, seed, device)
    signed = sorted({s * abs(float(c)) for c in constants for s in (-1.0, 1.0)})
    out, windows = [], {}
    for formula in bases:
        windows[formula.text] = lr_windows(batch, formula)
        score = float(batch.tuned_scores(formula.grammar, formula.expr, windows[formula.text])[0])
        out.append(Grown(formula, "", 0.0, score))
    base = min(out, key=lambda g: g.score).formula
    grammar, lrs = base.grammar, windows[base.text]
    terms = correction_terms(grammar, base.expr)
    log(f"grow: bases on {len(tasks)} tasks: " + ", ".join(f"{g.formula.text} {g.score:.3f}" for g in out))
    log(f"grow: {len(terms)} correction terms of {base.text} x {len(signed)} constants")
    for term in terms:
        rule = ex.Call("add", (base.expr, ex.Call("mul", (ex.Var(CONSTANT), term))))
        scores = batch.tuned_scores(grammar, rule, lrs, signed)
        best = int(torch.argmin(scores))
        constant = signed[best]
        joined = ex.Call("add" if constant > 0 else "sub", (base.expr, _scaled(abs(constant), term)))
        formula = Formula(joined, grammar)
        out.append(Grown(formula, ex.to_text(term), constant, float(scores[best])))
    out.sort(key=lambda g: g.score)
    return out
