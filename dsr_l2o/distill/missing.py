"""When no formula of the grammar is exact: which operand the grammar may be missing.

The teacher is recorded with a small set of extra candidate operands besides the grammar's own:
moving averages of the gradient and of its square with other betas, debiased or not. Each is
added to the grammar on its own and the search re-run (smaller trees); the candidate that makes
a formula exact (else raises R^2 most) is suggested as the grammar line to add.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from .. import expr as ex
from ..grammar import Grammar, Operand
from ..layout import gradient_names, moving_averages
from .record import Trace

CANDIDATE_BETAS = (0.9, 0.95, 0.99, 0.999)
SEARCH_SIZE = 4
SEARCH_ROWS = 10_000


@dataclass
class Suggestion:
    """An operand to add (``line``, in the grammar's YAML) and the best formula it allows."""

    name: str
    line: str
    formula: str
    r2: float
    heldout_error: float
    exact: bool

    def to_json(self) -> dict:
        return {"operand": self.name, "line": self.line, "formula": self.formula,
                "r2": self.r2 if math.isfinite(self.r2) else None,
                "heldout_error": self.heldout_error if math.isfinite(self.heldout_error) else None,
                "exact": self.exact}


def _grad_name(grammar: Grammar) -> str | None:
    return next(iter(gradient_names(grammar)), None)


def candidate_operands(grammar: Grammar) -> list[Operand]:
    """EMAs of ``g`` and ``g**2`` at :data:`CANDIDATE_BETAS`, plain and debiased, that the grammar
    does not define already (named like ``m99``, ``v99_hat``)."""
    grad = _grad_name(grammar)
    if grad is None:
        return []
    have = {(op.source, op.beta, op.debias) for op in moving_averages(grammar)}
    out = []
    for prefix, source, nonnegative in (("m", ex.Var(grad), False), ("v", ex.Power(ex.Var(grad), 2), True)):
        for beta in CANDIDATE_BETAS:
            for debias in (False, True):
                if (source, beta, debias) in have:
                    continue
                name = f"{prefix}{str(beta)[2:]}" + ("_hat" if debias else "")
                while name in grammar.operands:
                    name = "x" + name
                out.append(Operand(name, "ema", source, beta, debias, nonnegative))
    return out


def with_operands(grammar: Grammar, extra: list[Operand]) -> Grammar:
    """A copy of ``grammar`` with the operands ``extra`` added (not written to any file)."""
    operands = dict(grammar.operands)
    operands.update({op.name: op for op in extra})
    return dataclasses.replace(grammar, operands=operands, source_text="")


def operand_line(operand: Operand) -> str:
    """The grammar YAML line that defines ``operand``."""
    debias = ", debias: true" if operand.debias else ""
    return f'{operand.name}: {{ema: "{ex.to_text(operand.source)}", beta: {operand.beta:g}{debias}}}'


def suggest(fit: Trace, heldout: Trace | None, grammar: Grammar, names: list[str], extra: list[Operand],
            seed: int = 0, log=None, baseline_r2: float = -math.inf) -> Suggestion | None:
    """The extra operand whose formulas fit the teacher best (exact first), or ``None`` when none
    makes a formula exact or beats ``baseline_r2`` (the grammar's own best) by 0.001."""
    from .exact import search

    best, best_key = None, None
    for operand in extra:
        if operand.name not in fit.operands:
            continue
        extended = with_operands(grammar, [operand])
        candidates = [c for c in search(fit, heldout, extended, names + [operand.name], max_size=SEARCH_SIZE,
                                        seed=seed, rows=SEARCH_ROWS) if operand.name in c.formula.operands]
        if not candidates:
            continue
        top = candidates[0] if candidates[0].exact else max(candidates, key=lambda c: c.r2)
        key = (top.exact, -top.complexity if top.exact else top.r2)
        if log:
            log(f"with {operand_line(operand)}: {top.formula.text} (R^2 {top.r2:.6f}"
                f"{', exact' if top.exact else ''})")
        if best_key is None or key > best_key:
            best, best_key = Suggestion(operand.name, operand_line(operand), top.formula.text, top.r2,
                                        top.heldout_error, top.exact), key
    if best is not None and not best.exact and best.r2 < baseline_r2 + 1e-3:
        return None
    return best
