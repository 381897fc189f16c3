"""The update rule as a LaTeX equation, with the definitions of the operands it reads."""

from __future__ import annotations

from ..formula import Formula
from ..notation import operand_latex, update_latex


def latex_lines(formula: Formula, lr: float | None = None) -> list[str]:
    """The update ``w_t = ...`` followed by one definition per operand the formula needs."""
    grammar = formula.grammar
    lines = [update_latex(grammar, formula.sympy, lr)]
    lines += [operand_latex(grammar, grammar.operands[name]) for name in formula.state_operands]
    return lines


def aligned(lines: list[str], environment: str = "aligned") -> str:
    """``lines`` in an ``aligned``-style environment, each aligned at its first ``=``."""
    rows = [line.replace(" = ", " &= ", 1) if " = " in line else "& " + line for line in lines]
    body = " \\\\\n  ".join(rows)
    return f"\\begin{{{environment}}}\n  {body}\n\\end{{{environment}}}"


def latex_document(formula: Formula, lr: float | None = None) -> str:
    """A LaTeX snippet (``align*``, needs amsmath): the update equation and the operands' EMAs."""
    header = f"% Update rule found by dsr_l2o ({formula.grammar.name} grammar): {formula.text}\n"
    return header + aligned(latex_lines(formula, lr), "align*") + "\n"
