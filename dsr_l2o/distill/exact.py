r"""Exact recovery: enumerate small formulas, propose composites, refit constants, verify on held-out rows.

1. A :class:`~.enumerate.Library` of every distinct formula up to ``max_size`` nodes is built on
   a few hundred probe rows of the fit episodes.
2. Proposals (:mod:`.stages`): each formula alone, products and quotients of a small formula
   with any other, two-term sums ``X + c * Y`` led by the best ones, and ``sign(X + c * Y)``
   when the teacher's updates take one magnitude.
3. Each proposal is refitted on every fit row: the global factor :math:`\alpha` in closed form,
   ``c`` of a sum by weighted least squares (rounded to the fewest significant digits that cost
   no accuracy), ``c`` inside a sign from the interval that reproduces every sign.
4. It is verified on the held-out episodes, with the :math:`\alpha` fitted on the others:

   .. math:: e = \sqrt{\frac{\sum_i w_i (\alpha f_i - y_i)^2}{\sum_i w_i y_i^2}}

   A formula is **exact** when :math:`\alpha > 0` and :math:`e \le 10^{-6}`.

Exact formulas come first, smallest first; then the simplest of the others within 0.002 of their
best :math:`R^2` on the fit rows, then the rest by :math:`R^2`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .. import expr as ex
from ..formula import Formula
from . import stages
from .enumerate import Library
from .record import Trace

EXACT_TOLERANCE = 1e-6
MAX_ROWS = 40_000


@dataclass
class Candidate:
    """A formula with its fit: ``direction ~ alpha * formula`` on the fit rows (``r2``) and its
    relative error on the held-out rows (``heldout_error``; ``exact`` when it is at most 1e-6)."""

    formula: Formula
    alpha: float
    r2: float
    heldout_error: float
    kind: str

    @property
    def exact(self) -> bool:
        return self.alpha > 0 and self.heldout_error <= EXACT_TOLERANCE

    @property
    def complexity(self) -> int:
        return self.formula.size

    def to_json(self) -> dict:
        finite = lambda x: x if math.isfinite(x) else None  # noqa: E731
        return {"formula": self.formula.text, "raw_formula": self.formula.text, "alpha": finite(self.alpha),
                "r2": finite(self.r2), "heldout_error": finite(self.heldout_error), "exact": self.exact,
                "complexity": self.complexity, "stage": self.kind}


def search(fit: Trace, heldout: Trace | None, grammar, names: list[str], max_size: int = 5, probes: int = 256,
           seed: int = 0, log: Callable[[str], None] | None = None, rows: int = MAX_ROWS) -> list[Candidate]:
    """Candidates best first (see the module docstring) for the operands ``names``; at most
    ``rows`` fit and held-out rows each are used."""
    log = log or (lambda text: None)
    generator = torch.Generator().manual_seed(seed)
    fit = _cap(fit, rows, generator)
    heldout = _cap(heldout, rows, generator) if heldout is not None else None
    index = _probe_rows(fit, probes, generator)
    values = {n: fit.operands[n][index] for n in names}
    y, w = fit.direction[index], fit.weight[index]
    library = Library(grammar, values, names, max_size=max_size, log=log)
    proposals = stages.single(library, y, w)
    proposals += stages.products(library, y, w)
    leads = _leads(library, y, w)
    proposals += stages.sums(library, y, w, leads)
    if stages.is_sign_like(fit.direction):
        proposals += stages.signs(library, y)
    log(f"{len(library)} formulas enumerated, {len(proposals)} proposals to refit")
    out, seen = [], set()
    for proposal in sorted(proposals, key=lambda p: (-p.r2, p.size)):
        candidate = refit(proposal, fit, heldout, grammar)
        if candidate is None or candidate.formula.text in seen:
            continue
        seen.add(candidate.formula.text)
        out.append(candidate)
    return rank(out)


def rank(candidates: list[Candidate], tolerance: float = 0.002) -> list[Candidate]:
    """Exact candidates by size (then error); then the simplest within ``tolerance`` of the best
    R^2 of the others, then the rest by R^2."""
    exact = sorted((c for c in candidates if c.exact), key=lambda c: (c.complexity, c.heldout_error))
    rest = [c for c in candidates if not c.exact]
    best = max((c.r2 for c in rest), default=0.0)
    good = sorted((c for c in rest if c.r2 >= best - tolerance), key=lambda c: (c.complexity, -c.r2))
    worse = sorted((c for c in rest if c.r2 < best - tolerance), key=lambda c: -c.r2)
    return exact + good + worse


def _cap(trace: Trace, rows: int, generator) -> Trace:
    if len(trace) <= rows:
        return trace
    mask = torch.zeros(len(trace), dtype=torch.bool)
    mask[torch.randperm(len(trace), generator=generator)[:rows]] = True
    return trace.subset(mask)


def _probe_rows(trace: Trace, count: int, generator) -> torch.Tensor:
    """Rows drawn evenly from every sign pattern of the operands and the direction (so rare
    patterns, such as a gradient against its momentum, are represented)."""
    pool = torch.randperm(len(trace), generator=generator)
    pattern = torch.zeros(pool.numel(), dtype=torch.int64)
    for values in [trace.direction, *trace.operands.values()]:
        pattern = pattern * 3 + (torch.sign(values[pool]).long() + 1)
    groups = [pool[pattern == key] for key in torch.unique(pattern)]
    picked, depth = [], 0
    while sum(p.numel() for p in picked) < count and any(depth < g.numel() for g in groups):
        picked += [g[depth:depth + 1] for g in groups if depth < g.numel()]
        depth += 1
    return torch.cat(picked)[:count]


def _leads(library: Library, y, w, count: int = 12) -> list[int]:
    """The ``count`` best single formulas: the leading terms of two-term sums."""
    scores = stages.r2_scores(library.values, y, w)
    scores[torch.tensor(library.is_constant)] = 0.0
    return torch.topk(scores, min(count, len(library))).indices.tolist()


def evaluate(grammar, node: ex.Expr, operands: dict[str, torch.Tensor]) -> torch.Tensor:
    """``node`` on every row (float64), a constant broadcast to the rows."""
    like = next(iter(operands.values()))
    with torch.no_grad():
        out = grammar.evaluate(node, operands)
    if not isinstance(out, torch.Tensor):
        return torch.full_like(like, float(out))
    return out.double().expand_as(like)


def fit_alpha(f: torch.Tensor, trace: Trace) -> tuple[float, float]:
    """``(alpha, R^2)`` of ``direction ~ alpha * f`` on ``trace``."""
    w, y = trace.weight, trace.direction
    den = float((w * f * f).sum())
    if not math.isfinite(den) or den <= 0:
        return 0.0, -math.inf
    alpha = float((w * f * y).sum()) / den
    residual = float((w * (alpha * f - y).square()).sum())
    return alpha, 1.0 - residual / float((w * y * y).sum())


def relative_error(f: torch.Tensor, alpha: float, trace: Trace) -> float:
    """The weighted relative error of ``alpha * f`` against the directions of ``trace``."""
    w, y = trace.weight, trace.direction
    value = float((w * (alpha * f - y).square()).sum()) / float((w * y * y).sum())
    return math.sqrt(value) if math.isfinite(value) else math.inf


def refit(proposal: stages.Proposal, fit: Trace, heldout: Trace | None, grammar) -> Candidate | None:
    """The proposal with its constant and scale fitted on ``fit`` and its error on ``heldout``."""
    node = proposal.expr
    if proposal.kind == "sum":
        node = _refit_sum(node, fit, grammar)
    elif proposal.kind == "sign":
        node = _refit_sign(node, fit, grammar)
    if node is None:
        return None
    node = _tidy(node)
    f = evaluate(grammar, node, fit.operands)
    if not torch.isfinite(f).all():
        return None
    alpha, r2 = fit_alpha(f, fit)
    if alpha < 0:
        node = _tidy(ex.Call("neg", (node,)))
        f, alpha = -f, -alpha
    if not math.isfinite(r2):
        return None
    check = heldout if heldout is not None else fit
    g = evaluate(grammar, node, check.operands)
    error = relative_error(g, alpha, check) if torch.isfinite(g).all() else math.inf
    return Candidate(Formula(node, grammar), float(f"{alpha:.12g}"), r2, error, proposal.kind)


def _refit_sum(node: ex.Expr, fit: Trace, grammar) -> ex.Expr | None:
    lead, scaled = node.args
    other = scaled.args[1]
    x, z = evaluate(grammar, lead, fit.operands), evaluate(grammar, other, fit.operands)
    w, y = fit.weight, fit.direction
    gram = torch.tensor([[float((w * x * x).sum()), float((w * x * z).sum())],
                         [float((w * x * z).sum()), float((w * z * z).sum())]], dtype=torch.float64)
    rhs = torch.tensor([float((w * x * y).sum()), float((w * z * y).sum())], dtype=torch.float64)
    try:
        a, b = torch.linalg.solve(gram, rhs).tolist()
    except RuntimeError:
        return None
    if not (math.isfinite(a) and math.isfinite(b)) or a == 0:
        return None
    exact_c = b / a

    def error(c):
        f = x + c * z
        alpha, _ = fit_alpha(f, fit)
        return relative_error(f, alpha, fit)

    best = error(exact_c)
    c = exact_c
    for digits in range(1, 16):
        rounded = float(f"{exact_c:.{digits}g}")
        if error(rounded) <= best * 1.001 + 1e-8:
            c = rounded
            break
    return ex.Call("add", (lead, ex.Call("mul", (ex.Num(c), other))))


def _refit_sign(node: ex.Expr, fit: Trace, grammar) -> ex.Expr | None:
    inner = node.args[0]
    lead, scaled = inner.args
    other = scaled.args[1]
    x, z = evaluate(grammar, lead, fit.operands), evaluate(grammar, other, fit.operands)
    lo, hi = stages.sign_interval(x[None], z[None], torch.sign(fit.direction))
    c = stages.shortest_in(float(lo[0]), float(hi[0]))
    if c is None:
        c = scaled.args[0].value
    return ex.Call("sign", (ex.Call("add", (lead, ex.Call("mul", (ex.Num(c), other)))),))


def _tidy(node: ex.Expr) -> ex.Expr:
    """``1 * x`` -> ``x``, ``x + (-c) * y`` -> ``x - c * y``, ``c + x`` -> ``x + c``, ``neg(neg(x))`` -> ``x``."""
    if isinstance(node, ex.Call):
        args = tuple(_tidy(a) for a in node.args)
        if node.op == "mul" and isinstance(args[0], ex.Num) and args[0].value == 1.0:
            return args[1]
        if node.op == "add" and isinstance(args[0], ex.Num) and not isinstance(args[1], ex.Num):
            return ex.Call("add", (args[1], args[0]))
        if node.op == "neg" and isinstance(args[0], ex.Call) and args[0].op == "neg":
            return args[0].args[0]
        if node.op == "add" and isinstance(args[1], ex.Call) and args[1].op == "mul" \
                and isinstance(args[1].args[0], ex.Num) and args[1].args[0].value < 0:
            c = -args[1].args[0].value
            right = args[1].args[1] if c == 1.0 else ex.Call("mul", (ex.Num(c), args[1].args[1]))
            return ex.Call("sub", (args[0], right))
        return ex.Call(node.op, args)
    return node
