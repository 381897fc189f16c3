"""``result.json`` enriched with the simplified formula and its LaTeX."""

from __future__ import annotations

from ..notation import operand_latex, update_latex
from ..simplify import simplify
from .bundle import ResultBundle


def json_export(bundle: ResultBundle) -> dict:
    """The result's JSON plus ``simplified`` (text, complexity, LaTeX) and the operands' LaTeX."""
    formula = bundle.formula
    simple = simplify(formula)
    grammar = formula.grammar
    data = bundle.result.to_json()
    data["simplified"] = {
        "formula": simple.text,
        "complexity": simple.size,
        "latex": update_latex(grammar, simple.sympy, bundle.lr),
    }
    data["operands_latex"] = {name: operand_latex(grammar, grammar.operands[name])
                              for name in simple.state_operands}
    return data
