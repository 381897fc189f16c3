"""The converter: a sympy expression back to a formula-language tree of a grammar, exactly."""

from __future__ import annotations

import math

import sympy as sp

from .. import expr as ex
from ..errors import FormulaError
from ..grammar import Grammar
from ..operators import FORMS
from ..safe_sympy import TINY, bounds

class SimplifyError(FormulaError):
    """A sympy expression has no exact equivalent in the formula language of a grammar."""


def allowed_operators(grammar: Grammar) -> set[str]:
    """Operators a simplified formula may use: those the grammar lists (all if it lists none)."""
    listed = set(grammar.unary) | set(grammar.binary)
    return listed or set(grammar.operators)


def from_sympy(expr: sp.Expr, grammar: Grammar, allowed: set[str] | None = None) -> ex.Expr:
    """Convert a sympy expression over ``grammar``'s operand symbols into a formula-language tree.

    ``allowed`` limits the operators used (default: :func:`allowed_operators`). Raises
    :class:`SimplifyError` when no exact equivalent exists with those operators.
    """
    return _Converter(grammar, allowed_operators(grammar) if allowed is None else set(allowed)).convert(expr)


class _Converter:
    def __init__(self, grammar: Grammar, allowed: set[str]):
        self.grammar, self.allowed = grammar, allowed
        self.symbols = {grammar.symbol(n): n for n in grammar.operands}

    def fail(self, what: str):
        raise SimplifyError(f"the simplified form needs {what}, which grammar {self.grammar.name!r} does not offer")

    def op(self, name: str, *args: ex.Expr) -> ex.Expr:
        if name in self.allowed:
            return ex.Call(name, tuple(args))
        if name == "sub":
            return self.op("add", args[0], self.negate(args[1]))
        if name == "neg" and "mul" in self.allowed:
            return ex.Call("mul", (ex.Num(-1.0), args[0]))
        if name == "neg" and "sub" in self.allowed:
            return ex.Call("sub", (ex.Num(0.0), args[0]))
        if name == "relu" and "max" in self.allowed:
            return ex.Call("max", (args[0], ex.Num(0.0)))
        self.fail(f"operator {name!r}")

    def negate(self, node: ex.Expr) -> ex.Expr:
        if isinstance(node, ex.Num):
            return ex.Num(-node.value)
        return self.op("neg", node)

    def fold(self, name: str, nodes: list[ex.Expr]) -> ex.Expr:
        out = nodes[0]
        for node in nodes[1:]:
            out = self.op(name, out, node)
        return out

    def convert(self, e: sp.Expr) -> ex.Expr:
        if e.is_number:
            return self.number(e)
        if isinstance(e, sp.Symbol):
            if e not in self.symbols:
                raise SimplifyError(f"symbol {e.name!r} is not an operand of grammar {self.grammar.name!r}")
            return ex.Var(self.symbols[e])
        if e.is_Add:
            return self.add(e)
        if e.is_Mul:
            return self.mul(e)
        if e.is_Pow:
            return self.power(e)
        return self.function(e)

    def number(self, e: sp.Expr) -> ex.Num:
        try:
            value = float(e)
        except TypeError:
            raise SimplifyError(f"the simplified form has a non-real constant {e}") from None
        if not math.isfinite(value):
            raise SimplifyError(f"the simplified form has a non-finite constant {e}")
        return ex.Num(value)

    def add(self, e: sp.Expr) -> ex.Expr:
        terms = list(e.as_ordered_terms())
        terms.sort(key=lambda t: t.could_extract_minus_sign())
        out = self.convert(terms[0])
        for term in terms[1:]:
            if term.could_extract_minus_sign():
                out = self.op("sub", out, self.convert(-term))
            else:
                out = self.op("add", out, self.convert(term))
        return out

    def mul(self, e: sp.Expr) -> ex.Expr:
        coeff, rest = e.as_coeff_Mul()
        if coeff.is_negative:
            if float(coeff) == -1.0:
                return self.negate(self.convert(rest))
            if not coeff.is_Rational or coeff.q == 1:
                return self.scaled(ex.Num(float(coeff)), rest)
            return self.negate(self.convert(-e))
        numerator, denominator = [], []
        if coeff.is_Rational and coeff != 1:
            if coeff.p != 1:
                numerator.append(ex.Num(float(coeff.p)))
            if coeff.q != 1:
                denominator.append(sp.Integer(coeff.q))
        elif float(coeff) != 1.0:
            numerator.append(ex.Num(float(coeff)))
        for factor in sp.Mul.make_args(rest):
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent.is_negative and not factor.is_number:
                denominator.append(sp.Pow(base, -exponent))
            else:
                numerator.append(self.convert(factor))
        top = self.fold("mul", numerator) if numerator else ex.Num(1.0)
        return self.divide(top, denominator)

    def scaled(self, factor: ex.Num, rest: sp.Expr) -> ex.Expr:
        inner = self.convert(rest)
        if isinstance(inner, ex.Call) and inner.op == "div":
            return self.op("div", self.op("mul", factor, inner.args[0]), inner.args[1])
        return self.op("mul", factor, inner)

    def divide(self, top: ex.Expr, denominator: list[sp.Expr]) -> ex.Expr:
        if not denominator:
            return top
        whole = sp.Mul(*denominator)
        if _away_from_zero(whole):
            return self.op("div", top, self.convert(whole))
        for factor in denominator:
            base, exponent = factor.as_base_exp()
            if not _away_from_zero(base) or not exponent.is_Integer:
                self.fail(f"an exact division by {factor}, which can come closer to 0 than the guard of div")
            for _ in range(int(exponent)):
                top = self.op("div", top, self.convert(base))
        return top

    def power(self, e: sp.Pow) -> ex.Expr:
        base, exponent = e.args
        if exponent.is_Integer:
            n = int(exponent)
            if n < 0:
                return self.divide(ex.Num(1.0), [sp.Pow(base, -n)])
            return self.whole_power(self.convert(base), n)
        if exponent.is_Rational and exponent.q == 2:
            inner = base.args[0] if isinstance(base, sp.Abs) else base
            if not (isinstance(base, sp.Abs) or base.is_nonnegative):
                self.fail(f"a square root of {base}, which is not provably non-negative")
            if exponent < 0:
                return self.divide(ex.Num(1.0), [sp.Pow(base, -exponent)])
            root = self.op("sqrt", self.convert(inner))
            whole = (int(exponent.p) - 1) // 2
            return root if whole == 0 else self.op("mul", self.whole_power(self.convert(base), whole), root)
        self.fail(f"the exact power {e}, which no operator expresses (pow is guarded near 0)")

    def whole_power(self, base: ex.Expr, n: int) -> ex.Expr:
        chunks = [ex.Power(base, 8)] * (n // 8) + ([ex.Power(base, n % 8)] if n % 8 else [])
        chunks = [base if c.exponent == 1 else c for c in chunks]
        return self.fold("mul", chunks)

    def function(self, e: sp.Expr) -> ex.Expr:
        if isinstance(e, (sp.Max, sp.Min)):
            return self.extremum(e)
        if type(e) not in FORMS:
            self.fail(f"the function {type(e).__name__}")
        name, form = FORMS[type(e)]
        if form.when is not None and not form.when(*(bounds(a) for a in e.args)):
            self.fail(f"a plain {e} whose argument can leave the range where it equals the guarded {name!r}")
        return self.op(name, *(self.convert(a) for a in e.args))

    def extremum(self, e: sp.Expr) -> ex.Expr:
        name = "max" if isinstance(e, sp.Max) else "min"
        args = sorted(e.args, key=lambda a: a.is_number)
        if name == "max" and len(args) == 2 and args[1] == 0 and "max" not in self.allowed:
            return self.op("relu", self.convert(args[0]))
        return self.fold(name, [self.convert(a) for a in args])


def _away_from_zero(e: sp.Expr) -> bool:
    lo, hi = bounds(e)
    return lo >= TINY or hi <= -TINY
