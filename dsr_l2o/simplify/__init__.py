"""Simplify a formula with sympy and write the result back in the formula language of its grammar.

Simplification is exact under the safe semantics: guarded operators stay guarded
(:mod:`dsr_l2o.safe_sympy`) unless their guard provably never fires, and the way back
(:func:`from_sympy`) turns plain ``exp``, ``log`` and division into the grammar's guarded operators
only where the guard provably never fires either. The simpler of (simplified, original) by node
count is kept.
"""

from __future__ import annotations

from .. import expr as ex
from ..budget import within_budget
from ..errors import FormulaError, shorten
from ..formula import Formula
from .converter import SimplifyError, allowed_operators, from_sympy
from .equivalence import probe_values, same_values
from .rewrites import MAX_OPS_FOR_FULL_SIMPLIFY, _sympy_candidates, fold_signs, whole_floats_to_integers

__all__ = ["MAX_OPS_FOR_FULL_SIMPLIFY", "SimplifyError", "allowed_operators", "fold_signs", "from_sympy",
           "probe_values", "same_values", "simplify", "whole_floats_to_integers"]


def simplify(formula: Formula, verify: bool = True) -> Formula:
    """A short canonical form of ``formula`` in the same grammar, or ``formula`` itself.

    Candidates are sympy's automatic form and :func:`sympy.simplify`'s result; each is converted
    back with the operators the grammar lists plus those ``formula`` already uses, and the one with
    the fewest nodes wins, the original on ties. With ``verify`` a candidate must also give the same
    values as the original on random operand values (a guard against sympy surprises).
    """
    found = [formula]
    return within_budget(lambda: _simplest(formula, verify, found), lambda: found[-1],
                         f"simplifying {shorten(formula.text, 60)!r}")


def _simplest(formula: Formula, verify: bool, found: list[Formula]) -> Formula:
    grammar = formula.grammar
    allowed = allowed_operators(grammar) | ex.operators_used(formula.expr)
    for candidate in _sympy_candidates(formula.sympy):
        try:
            tree = from_sympy(candidate, grammar, allowed)
            simplified = Formula(grammar.parse(ex.to_text(tree)), grammar)
        except (FormulaError, RecursionError, OverflowError, ValueError):
            continue
        if simplified.size < found[-1].size and (not verify or same_values(formula, simplified)):
            found.append(simplified)
    return found[-1]
