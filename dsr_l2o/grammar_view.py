"""A readable summary of a grammar, for ``dsr-l2o grammar show``."""

from __future__ import annotations

from .expr import format_number
from .grammar import Grammar
from .notation import operand_latex, operand_text


def describe(grammar: Grammar, latex: bool = False) -> str:
    """Operands with their definitions, the operators in play and the constants."""
    lines = [f"grammar {grammar.name}" + (f": {grammar.description}" if grammar.description else "")]
    lines.append("operands:")
    width = max(len(n) for n in grammar.operands)
    for name, operand in grammar.operands.items():
        definition = operand_latex(grammar, operand) if latex else operand_text(operand)
        lines.append(f"  {name:<{width}}  {definition}")
    for title, names in (("unary", grammar.unary), ("binary", grammar.binary)):
        lines.append(f"{title} operators:")
        for name in names:
            op = grammar.operators[name]
            meaning = op.latex.format(*"xy") if latex else op.doc
            lines.append(f"  {name:<8}  {meaning}")
    if grammar.custom:
        lines.append("custom operators:")
        for name, (args, _) in grammar.custom.items():
            lines.append(f"  {name}({', '.join(args)}) = {grammar.operators[name].doc}")
    lines.append("constants: " + (", ".join(format_number(c) for c in grammar.constants) or "(none)"))
    lines.append("update: w <- w - lr * f(operands)")
    return "\n".join(lines)
