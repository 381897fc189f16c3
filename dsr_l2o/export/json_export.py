"""``result.json`` enriched with the simplified formula and its LaTeX."""

from __future__ import annotations

import math

from ..notation import operand_latex, update_latex
from ..simplify import simplify
from .bundle import ResultBundle


def json_export(bundle: ResultBundle) -> dict:
    """The result's JSON plus ``simplified`` (text, complexity, LaTeX) and the operands' LaTeX."""
    formula = bundle.formula
    simple = simplify(formula)
    grammar = formula.grammar
    data = dict(bundle.data)
    data["simplified"] = {
        "formula": simple.text,
        "complexity": simple.size,
        "latex": update_latex(grammar, simple.sympy, bundle.lr),
    }
    data["operands_latex"] = {name: operand_latex(grammar, grammar.operands[name])
                              for name in simple.state_operands}
    return _finite(data)


def _finite(value):
    """``value`` with non-finite floats replaced by ``None`` (strict JSON has no NaN/Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
