"""Sympy functions for the guarded operators, with the exact semantics the torch side computes.

Each class reduces to plain sympy when the guard provably never fires (a number, or an argument
whose bounds keep it inside the safe region), so simplification sees ordinary algebra wherever
that is exact. ``expand_guards`` rewrites any remaining guarded call into plain sympy
(``Min``/``Max``/``Piecewise``) for numerical checks with ``lambdify``.
"""

from __future__ import annotations

import math

import sympy as sp
from sympy.core.logic import fuzzy_and

from .primitives import TINY_DEN, interval_abs

TINY = TINY_DEN
"""Floor of ``|y|`` in division and of ``|x|`` in ``log``."""
EXP_MAX = 20.0
"""Largest exponent ``exp`` evaluates; larger arguments are clamped."""


def bounds(expr: sp.Expr) -> tuple[float, float]:
    """A conservative interval ``(lo, hi)`` that holds every value of ``expr`` (may be infinite).

    Sympy's algebra (numbers, sums, products, powers, Max/Min) is handled here; every function
    class an operator's form contains brings its own rule (:data:`dsr_l2o.operators.FORMS`).
    """
    from .operators import FORMS

    inf = float("inf")
    if expr.is_Number:
        v = float(expr)
        return v, v
    if expr.is_number and expr.is_real:
        try:
            v = float(expr.evalf())
        except (TypeError, ValueError):
            v = math.nan
        if math.isfinite(v):
            return v - abs(v) * 1e-14, v + abs(v) * 1e-14
    form = FORMS.get(type(expr))
    if form is not None and form[1].bounds is not None:
        return form[1].bounds(*(bounds(a) for a in expr.args))
    if expr.is_Pow and expr.exp == sp.Rational(1, 2):
        lo, hi = interval_abs(bounds(expr.args[0]))
        return lo**0.5, hi**0.5
    if isinstance(expr, (sp.Max, sp.Min)):
        pick = max if isinstance(expr, sp.Max) else min
        ranges = [bounds(a) for a in expr.args]
        return pick(r[0] for r in ranges), pick(r[1] for r in ranges)
    if expr.is_Add:
        lo = hi = 0.0
        for a in expr.args:
            alo, ahi = bounds(a)
            lo, hi = lo + alo, hi + ahi
        return lo, hi
    if expr.is_Mul:
        lo = hi = 1.0
        for a in expr.args:
            alo, ahi = bounds(a)
            products = [x * y for x in (lo, hi) for y in (alo, ahi) if not _nan_product(x, y)]
            lo, hi = (min(products), max(products)) if products else (-inf, inf)
        return lo, hi
    if expr.is_Pow and expr.exp.is_Integer and int(expr.exp) % 2 == 0 and int(expr.exp) > 0:
        return 0.0, inf
    if expr.is_nonnegative:
        return 0.0, inf
    if expr.is_nonpositive:
        return -inf, 0.0
    return -inf, inf


def _nan_product(x: float, y: float) -> bool:
    return (x == 0 and abs(y) == float("inf")) or (y == 0 and abs(x) == float("inf"))


class ClampedExp(sp.Function):
    """``exp(min(x, 20))``: the exponential with its argument clamped at ``EXP_MAX``."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.exp(sp.Min(x, EXP_MAX))
        if bounds(x)[1] <= EXP_MAX:
            return sp.exp(x)
        return None

    def _eval_is_positive(self):
        return True

    def _eval_is_real(self):
        return self.args[0].is_real


    def expand_guard(self):
        return sp.exp(sp.Min(self.args[0], EXP_MAX))


class LogAbs(sp.Function):
    """``log(max(|x|, 1e-12))``: the logarithm of the magnitude, floored away from zero."""

    nargs = 1

    @classmethod
    def eval(cls, x):
        if x.is_Number:
            return sp.log(sp.Max(sp.Abs(x), TINY))
        lo, hi = bounds(x)
        if lo >= TINY:
            return sp.log(x)
        if hi <= -TINY:
            return sp.log(-x)
        return None

    def _eval_is_real(self):
        return self.args[0].is_real


    def expand_guard(self):
        return sp.log(sp.Max(sp.Abs(self.args[0]), TINY))


class SafeDiv(sp.Function):
    """``x / (sgn(y) * max(|y|, 1e-12))`` with ``sgn(0) = +1``: division that never divides by 0."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if y.is_Number:
            if abs(float(y)) >= TINY:
                return x / y
            return x / sp.Float(TINY if float(y) >= 0 else -TINY)
        if x == 0:
            return sp.Integer(0)
        lo, hi = bounds(y)
        if lo >= TINY or hi <= -TINY:
            return x / y
        return None

    def _eval_is_real(self):
        return fuzzy_and(a.is_real for a in self.args)


    def expand_guard(self):
        x, y = self.args
        return sp.Piecewise(
            (x / y, sp.Abs(y) >= TINY), (x / TINY, y >= 0), (-x / TINY, True)
        )


class SafePow(sp.Function):
    """``exp(min(y * log(max(|x|, 1e-12)), 20))``: ``|x|**y`` floored at 0 and capped above."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_Number and y.is_Number:
            return ClampedExp(y * LogAbs(x))
        return None

    def _eval_is_positive(self):
        return True


    def expand_guard(self):
        x, y = self.args
        return sp.exp(sp.Min(y * sp.log(sp.Max(sp.Abs(x), TINY)), EXP_MAX))


class SafeDen(sp.Function):
    """``sgn(y) * max(|y|, 1e-12)`` with ``sgn(0) = +1``: the denominator of the safe division (a primitive)."""

    nargs = 1


GUARDED = (ClampedExp, LogAbs, SafeDiv, SafePow)


def _eval_evalf(self, prec):
    """Numbers through the plain-sympy form, so guarded constants compare (``Min``/``Max``) and convert."""
    from sympy.core.evalf import prec_to_dps

    return self.expand_guard().evalf(prec_to_dps(prec))


for _guarded in GUARDED:
    _guarded._eval_evalf = _eval_evalf


def expand_guards(expr: sp.Expr) -> sp.Expr:
    """Rewrite every guarded call in ``expr`` as plain sympy with the same values everywhere."""
    return expr.replace(lambda e: isinstance(e, GUARDED), lambda e: e.expand_guard())
