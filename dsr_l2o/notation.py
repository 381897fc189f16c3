"""How operands and formulas are written for people: LaTeX names, definitions and equations."""

from __future__ import annotations

import re

import sympy as sp
from sympy.printing.latex import LatexPrinter

from . import expr as ex
from .grammar import Grammar, Operand
from .layout import dispatch
from .operators import FORMS, form_latex

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


class _Printer(LatexPrinter):
    """Sympy's LaTeX printer, with every operator form printed as the registry writes it."""

    def _print(self, expr, **kwargs):
        if type(expr) in FORMS:
            text = form_latex(type(expr)).format(*(self._print(a) for a in expr.args))
            exponent = kwargs.get("exp")
            return rf"\left({text}\right)^{{{exponent}}}" if exponent is not None else text
        return super()._print(expr, **kwargs)


def print_latex(expression: sp.Expr, names: dict | None = None) -> str:
    """LaTeX of a sympy expression (operator forms as in the registry; ``names`` for symbols)."""
    return _Printer({"symbol_names": names or {}}).doprint(expression)


def latex(grammar: Grammar, expression: sp.Expr | ex.Expr) -> str:
    """LaTeX of a sympy expression or formula-language tree over ``grammar``'s operands."""
    if not isinstance(expression, sp.Basic):
        expression = grammar.to_sympy(expression)
    return print_latex(expression, symbol_names(grammar))


class _LatexDefinition:
    """The layout backend that writes one operand's definition as a LaTeX equation."""

    def __init__(self, grammar: Grammar, name: str):
        self.grammar = grammar
        self.name = f"{{{name}}}" if "_" in name else name  # braces keep ``_t`` from becoming a double subscript

    def gradient(self, op):
        return rf"{self.name}_t = \nabla_w L(w_{{t-1}})"

    def parameter(self, op):
        return rf"{self.name}_t = w_{{t-1}}"

    def step(self, op):
        return rf"{self.name} = 1, 2, \dots"

    def derived(self, op):
        return rf"{self.name} = {latex(self.grammar, op.source)}"

    def average(self, op):
        name, body = self.name, latex(self.grammar, op.source)
        beta, one_minus = f"{op.beta:g}", f"{1 - op.beta:.6g}"
        if op.debias:
            raw = rf"{name}^{{\mathrm{{raw}}}}"
            return (rf"{raw}_t = {beta}\, {raw}_{{t-1}} + {one_minus} \left({body}\right),\quad "
                    rf"{name}_t = \frac{{{raw}_t}}{{1 - {beta}^{{t}}}}")
        return rf"{name}_t = {beta}\, {name}_{{t-1}} + {one_minus} \left({body}\right)"

    def previous(self, op):
        body = latex(self.grammar, op.source)
        if not isinstance(op.source, ex.Var):
            body = rf"\left({body}\right)"
        return rf"{self.name}_t = {body}_{{t-1}},\quad {self.name}_1 = 0"

    def norm(self, op):
        return rf"{self.name} = \left\lVert {latex(self.grammar, op.source)} \right\rVert_2\ \text{{(per tensor)}}"


class _TextDefinition:
    """The layout backend that writes one operand's definition in plain text."""

    def gradient(self, op):
        return "gradient"

    def parameter(self, op):
        return "the parameter itself"

    def step(self, op):
        return "step count t (from 1)"

    def derived(self, op):
        return ex.to_text(op.source)

    def average(self, op):
        text = f"EMA of {ex.to_text(op.source)} with beta {op.beta:g}"
        return text + ", bias-corrected by 1 - beta**t" if op.debias else text

    def previous(self, op):
        return f"{ex.to_text(op.source)} at the previous step (0 at the first)"

    def norm(self, op):
        return f"Euclidean norm of {ex.to_text(op.source)} over each parameter tensor"


def operand_latex(grammar: Grammar, operand: Operand) -> str:
    """The definition of one operand as a LaTeX equation."""
    return dispatch(operand, _LatexDefinition(grammar, latex_name(operand.name)))


def operand_text(operand: Operand) -> str:
    """The definition of one operand in plain text."""
    return dispatch(operand, _TextDefinition())


def update_latex(grammar: Grammar, direction: sp.Expr | ex.Expr, lr: float | None = None) -> str:
    """The whole update ``w_t = w_{t-1} - lr * f`` in LaTeX."""
    step = print_latex(sp.Float(lr, 3)) if lr is not None else r"\eta"
    return rf"w_t = w_{{t-1}} - {step} \left({latex(grammar, direction)}\right)"
