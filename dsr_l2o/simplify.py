"""Simplify a formula with sympy and write the result back in the formula language of its grammar.

Simplification is exact under the safe semantics: guarded operators stay guarded
(:mod:`dsr_l2o.safe_sympy`) unless their guard provably never fires, and the way back
(:func:`from_sympy`) turns plain ``exp``, ``log`` and division into the grammar's guarded operators
only where the guard provably never fires either. The simpler of (simplified, original) by node
count is kept.
"""

from __future__ import annotations

import math

import sympy as sp
import torch

from . import expr as ex
from .budget import within_budget
from .errors import FormulaError, shorten
from .formula import Formula
from .grammar import Grammar
from .layout import is_step
from .operators import FORMS
from .safe_sympy import TINY, bounds

MAX_OPS_FOR_FULL_SIMPLIFY = 80
"""Larger expressions skip :func:`sympy.simplify` (it can take minutes) and keep only sympy's
automatic canonical form."""


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


def whole_floats_to_integers(expression: sp.Expr) -> sp.Expr:
    """``expression`` with every whole-number Float (``2.0``) replaced by the Integer (``2``)."""
    whole = {f: sp.Integer(int(f)) for f in expression.atoms(sp.Float) if f.is_finite and f == int(f)}
    return expression.xreplace(whole) if whole else expression


def _sign_product(product: sp.Expr) -> sp.Expr:
    """``x * sign(x)**k`` and ``|x| * sign(x)**k`` folded: exact for every real ``x``, 0 included."""
    powers = dict(product.as_powers_dict())
    for factor in [f for f in powers if isinstance(f, sp.sign)]:
        inner, k = factor.args[0], powers[factor]
        if not (k.is_Integer and k > 0):
            continue
        for partner, odd_result, even_result in ((inner, sp.Abs(inner), inner), (sp.Abs(inner), inner, sp.Abs(inner))):
            if powers.get(partner) == 1 and factor in powers:
                del powers[partner], powers[factor]
                result = odd_result if int(k) % 2 else even_result
                powers[result] = powers.get(result, 0) + 1
    return sp.Mul(*(base**exp for base, exp in powers.items()))


def fold_signs(expression: sp.Expr) -> sp.Expr:
    """Apply :func:`_sign_product` to every product in ``expression``."""
    return expression.replace(lambda e: e.is_Mul and e.has(sp.sign), _sign_product)


def _sympy_candidates(expression: sp.Expr) -> list[sp.Expr]:
    expression = whole_floats_to_integers(expression)
    candidates = [expression]
    folded = fold_signs(expression)
    if folded != expression:
        candidates.append(folded)
        expression = folded
    if sp.count_ops(expression) <= MAX_OPS_FOR_FULL_SIMPLIFY:
        try:
            candidates.append(sp.simplify(expression))
        except (TypeError, ValueError, NotImplementedError, RecursionError, AttributeError):
            pass
    return candidates


def probe_values(formula: Formula, size: int = 64, seed: int = 0, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Random operand values for numerical checks: normal values plus zeros and large magnitudes."""
    gen = torch.Generator().manual_seed(seed)
    env = {}
    for name in sorted(formula.operands):
        operand = formula.grammar.operands[name]
        if is_step(operand):
            env[name] = torch.randint(1, 1000, (size,), generator=gen).to(dtype)
            continue
        values = torch.randn(size, generator=gen, dtype=dtype)
        values[: size // 8] = 0.0
        values[size // 8: size // 4] *= 40.0
        if operand.nonnegative:
            values = values.abs()
        env[name] = values
    return env


def same_values(a: Formula, b: Formula, size: int = 64, seed: int = 0) -> bool:
    """Whether two formulas give the same updates on :func:`probe_values` (float64).

    Entries where ``a`` itself is ill-conditioned (float32 and float64 disagree) are ignored.
    """
    env = probe_values(a, size, seed)
    env.update({k: v for k, v in probe_values(b, size, seed).items() if k not in env})
    with torch.no_grad():
        ref = a.evaluate(env).expand(size)
        low = a.evaluate({k: v.float() for k, v in env.items()}).double().expand(size)
        got = b.evaluate(env).expand(size)
    stable = torch.isclose(ref, low, rtol=1e-4, atol=1e-6, equal_nan=True)
    close = torch.isclose(ref, got, rtol=1e-6, atol=1e-9, equal_nan=True)
    return bool(torch.all(close | ~stable))


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
