"""How operands and formulas are written for people: LaTeX names, definitions and equations."""

from __future__ import annotations

import re

import sympy as sp

from . import expr as ex
from .grammar import Grammar, Operand

_ACCENTS = {"hat": r"\hat", "tilde": r"\tilde", "bar": r"\bar"}
_GREEK = {"alpha", "beta", "gamma", "delta", "epsilon", "eta", "lambda", "mu", "nu", "rho",
          "sigma", "tau", "theta", "phi", "psi", "omega"}


def latex_name(name: str) -> str:
    """LaTeX for an operand name: ``m_hat`` -> ``\\hat{m}``, ``m2`` -> ``m_{2}``, ``beta`` -> ``\\beta``."""
    base, _, rest = name.partition("_")
    base_tex = f"\\{base}" if base in _GREEK else base
    match = re.fullmatch(r"([A-Za-z]+)([0-9]+)", base)
    if match and base not in _GREEK:
        letters = f"\\{match.group(1)}" if match.group(1) in _GREEK else match.group(1)
        base_tex = f"{letters}_{{{match.group(2)}}}"
    if not rest:
        return base_tex
    if rest in _ACCENTS:
        return f"{_ACCENTS[rest]}{{{base_tex}}}"
    return f"{base_tex}_{{\\mathrm{{{rest.replace('_', ' ')}}}}}"


def symbol_names(grammar: Grammar) -> dict[sp.Symbol, str]:
    """``symbol_names`` for :func:`sympy.latex`, covering every operand of ``grammar``."""
    return {grammar.symbol(n): latex_name(n) for n in grammar.operands}


def latex(grammar: Grammar, expression: sp.Expr | ex.Expr) -> str:
    """LaTeX of a sympy expression or formula-language tree over ``grammar``'s operands."""
    if not isinstance(expression, sp.Basic):
        expression = grammar.to_sympy(expression)
    return sp.latex(expression, symbol_names=symbol_names(grammar))


def operand_latex(grammar: Grammar, operand: Operand) -> str:
    """The definition of one operand as a LaTeX equation."""
    name = latex_name(operand.name)
    if "_" in name:
        name = f"{{{name}}}"  # braces keep ``_t`` from becoming a double subscript
    if operand.kind == "grad":
        return rf"{name}_t = \nabla_w L(w_{{t-1}})"
    if operand.kind == "param":
        return rf"{name}_t = w_{{t-1}}"
    if operand.kind == "step":
        return rf"{name} = 1, 2, \dots"
    body = latex(grammar, operand.source)
    if operand.kind == "expr":
        return rf"{name} = {body}"
    beta = f"{operand.beta:g}"
    one_minus = f"{1 - operand.beta:.6g}"
    if operand.debias:
        raw = rf"{name}^{{\mathrm{{raw}}}}"
        return (rf"{raw}_t = {beta}\, {raw}_{{t-1}} + {one_minus} \left({body}\right),\quad "
                rf"{name}_t = \frac{{{raw}_t}}{{1 - {beta}^{{t}}}}")
    return rf"{name}_t = {beta}\, {name}_{{t-1}} + {one_minus} \left({body}\right)"


def operand_text(operand: Operand) -> str:
    """The definition of one operand in plain text."""
    if operand.kind in ("grad", "param", "step"):
        return {"grad": "gradient", "param": "the parameter itself", "step": "step count t (from 1)"}[operand.kind]
    if operand.kind == "expr":
        return ex.to_text(operand.source)
    text = f"EMA of {ex.to_text(operand.source)} with beta {operand.beta:g}"
    return text + ", bias-corrected by 1 - beta**t" if operand.debias else text


def update_latex(grammar: Grammar, direction: sp.Expr | ex.Expr, lr: float | None = None) -> str:
    """The whole update ``w_t = w_{t-1} - lr * f`` in LaTeX."""
    step = sp.latex(sp.Float(lr, 3)) if lr is not None else r"\eta"
    return rf"w_t = w_{{t-1}} - {step} \left({latex(grammar, direction)}\right)"
