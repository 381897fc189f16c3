"""The compiler: a sympy expression over tensor and scalar symbols becomes run functions.

Operator forms are first expanded into primitives (each form's kernel run over sympy, see
:mod:`dsr_l2o.operators`); scalar sub-expressions (constants, ``t``, bias corrections) are
evaluated in Python and folded into the ``alpha``/``value`` of fused tensor ops (``add_``,
``addcmul_``, ``addcdiv_``, ``lerp_``). Anything without a lowering raises :class:`Unsupported`.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Callable

import sympy as sp

from ..operators import FORMS
from ..primitives import MATH, SYMPY, TORCH, primitive_name
from .kernels import TV, Ctx, Scalar, Term, Unsupported, _binary, _lift, _pow, _square, _unary, accumulate, sval

def expand_forms(expr: sp.Expr) -> sp.Expr:
    """Every operator form (:data:`~dsr_l2o.operators.FORMS`) written out in primitives: its kernel
    run over sympy, so that only primitives (``exp``, ``Abs``, ``SafeDen``, ...) remain."""
    def guarded(e):
        return type(e) in FORMS and not _is_primitive(e)

    return expr.replace(guarded, lambda e: FORMS[type(e)][1].kernel(SYMPY, *e.args))


def count_subexpressions(exprs) -> Counter:
    """How often each sub-expression occurs in ``exprs`` (operator forms expanded first)."""
    counts: Counter = Counter()
    for expr in exprs:
        counts.update(sp.preorder_traversal(expand_forms(expr)))
    return counts


def _is_primitive(e: sp.Expr) -> bool:
    """A one-argument function whose kernel is the primitive of the same name."""
    return len(e.args) == 1 and FORMS[type(e)][1].kernel(SYMPY, *e.args) == e


class Lowerer:
    """Lowers sympy expressions over tensor symbols and scalar symbols into run functions."""

    def __init__(self, tensor_names: dict[sp.Symbol, str], scalar_names: dict[sp.Symbol, str],
                 counts: Counter | None = None):
        self.tensor_names, self.scalar_names = tensor_names, scalar_names
        self.shared = counts
        """Sub-expression counts over every expression of a program (shared ones are computed once
        per run and kept in the run's memo); ``None``: counted per prepared expression."""
        self.counts: Counter = Counter()

    def is_scalar(self, e: sp.Expr) -> bool:
        return not any(s in self.tensor_names for s in e.free_symbols)

    def prepare(self, expr: sp.Expr) -> sp.Expr:
        """Expand operator forms into primitives and count shared sub-expressions (computed once per run)."""
        expr = expand_forms(expr)
        self.counts = count_subexpressions([expr]) if self.shared is None else self.shared
        return expr

    # scalars ------------------------------------------------------------------
    def scalar(self, e: sp.Expr) -> Scalar:
        if not e.free_symbols:
            value = complex(e.evalf())
            if value.imag != 0:
                raise Unsupported(f"complex constant {e}")
            return float(value.real)
        if isinstance(e, sp.Symbol):
            name = self.scalar_names[e]
            return lambda env: env[name]
        parts = [self.scalar(a) for a in e.args]
        if e.is_Add:
            return _lift(lambda *xs: math.fsum(xs), parts)
        if e.is_Mul:
            return _lift(lambda *xs: math.prod(xs), parts)
        if e.is_Pow:
            return _lift(_pow, parts)
        if isinstance(e, (sp.Max, sp.Min)):
            return _lift(lambda *xs: max(xs) if isinstance(e, sp.Max) else min(xs), parts)
        fn = getattr(MATH, primitive_name(type(e)), None)
        if fn is None:
            raise Unsupported(f"no scalar lowering for {e.func}")
        return _lift(fn, parts)

    # terms --------------------------------------------------------------------
    def term(self, e: sp.Expr) -> Term:
        """Split ``e`` into scalar coefficient, numerator and denominator tensor factors."""
        factors = e.args if e.is_Mul else (e,)
        scalars, nums, dens, single = [], [], [], None
        for f in factors:
            if self.is_scalar(f):
                scalars.append(self.scalar(f))
            elif f.is_Pow and f.exp.is_Number and f.exp < 0:
                dens.append(self.tensor(f.base if f.exp == -1 else f.base ** (-f.exp)))
            elif f.is_Pow and f.exp == 2 and isinstance(f.base, sp.Symbol):
                nums += [self.tensor(f.base)] * 2
            else:
                nums.append(self.tensor(f))
                single = f
        coef = _lift(lambda *xs: math.prod(xs), scalars) if scalars else 1.0
        fresh = len(nums) > 1 or bool(dens) or (len(nums) == 1 and self.owns(single))
        return Term(coef, nums, dens, fresh)

    def owns(self, e: sp.Expr) -> bool:
        """Whether the lowered value of ``e`` is a fresh tensor no one else reads."""
        return not isinstance(e, sp.Symbol) and self.counts[e] <= 1

    def materialize(self, term: Term) -> Callable[[Ctx], TV]:
        """The term's value as a tensor (a fresh one unless it is a bare shared factor)."""
        def run(ctx: Ctx) -> TV:
            ops = ctx.ops
            vals = [n(ctx) for n in term.nums]
            acc = vals[0] if vals else None
            for v in vals[1:]:
                acc = _binary(ops, "mul", acc, v)
            for d in term.dens:
                dv = d(ctx)
                acc = _unary(ops, "reciprocal", dv) if acc is None else _binary(ops, "div", acc, dv)
            c = sval(term.coef, ctx.scalars)
            return _unary(ops, "mul", acc, c) if c != 1.0 else acc
        return run

    # tensors ------------------------------------------------------------------
    def tensor(self, e: sp.Expr) -> Callable[[Ctx], TV]:
        run = self._tensor(e)
        if self.counts[e] <= 1 or isinstance(e, sp.Symbol):
            return run
        key = e

        def shared(ctx: Ctx) -> TV:
            if key not in ctx.memo:
                ctx.memo[key] = TV(run(ctx).tensors, False)
            return ctx.memo[key]
        return shared

    def _tensor(self, e: sp.Expr) -> Callable[[Ctx], TV]:
        if isinstance(e, sp.Symbol):
            name = self.tensor_names[e]
            return lambda ctx: TV(ctx.tensors[name], False)
        if e.is_Add:
            return self.add(e)
        if e.is_Mul or (e.is_Pow and e.exp.is_Number and e.exp < 0):
            return self.materialize(self.term(e))
        if e.is_Pow:
            return self.power(e)
        if isinstance(e, (sp.Max, sp.Min)):
            return self.extremum(e)
        return self.function(e)

    def add(self, e: sp.Expr) -> Callable[[Ctx], TV]:
        scalar_parts = [self.scalar(a) for a in e.args if self.is_scalar(a)]
        const = _lift(lambda *xs: math.fsum(xs), scalar_parts) if scalar_parts else None
        terms = [self.term(a) for a in e.args if not self.is_scalar(a)]
        simple = [t for t in terms if len(t.nums) == 1 and not t.dens]
        pair = None
        if not any(t.fresh for t in terms) and len(simple) >= 2:
            first = next((t for t in simple if t.coef == 1.0), None)
            if first is not None:
                second = next(t for t in simple if t is not first)
                pair = (first, second)
        if pair:
            rest = [t for t in terms if t is not pair[0] and t is not pair[1]]
        else:
            start = next((t for t in terms if t.fresh), terms[0])
            rest = [t for t in terms if t is not start]
            start_run = self.materialize(start)

        def run(ctx: Ctx) -> TV:
            ops = ctx.ops
            if pair:
                a, b = pair[0].nums[0](ctx), pair[1].nums[0](ctx)
                acc = ops.out("add", a.tensors, b.tensors, alpha=sval(pair[1].coef, ctx.scalars))
            else:
                first = start_run(ctx)
                if first.owned:
                    acc = first.tensors
                elif const is not None:
                    acc = ops.out("add", first.tensors, sval(const, ctx.scalars))
                    for t in rest:
                        accumulate(ctx, acc, t, 1.0)
                    return TV(acc, True)
                else:
                    acc = ops.out("clone", first.tensors)
            for t in rest:
                accumulate(ctx, acc, t, 1.0)
            if const is not None:
                ops.inplace("add", acc, sval(const, ctx.scalars))
            return TV(acc, True)
        return run

    def power(self, e: sp.Expr) -> Callable[[Ctx], TV]:
        base, exp = e.args
        if not self.is_scalar(exp):
            raise Unsupported("tensor exponent")
        inner = self.tensor(base)
        nonneg = bool(base.is_nonnegative)
        if exp == 2:
            return lambda ctx: _square(ctx.ops, inner(ctx))
        if exp == sp.Rational(1, 2):
            return lambda ctx: _unary(ctx.ops, "sqrt", inner(ctx) if nonneg else _unary(ctx.ops, "abs", inner(ctx)))
        p = self.scalar(exp)
        whole = exp.is_Integer

        def run(ctx: Ctx) -> TV:
            x = inner(ctx)
            if not (whole or nonneg):
                x = _unary(ctx.ops, "abs", x)
            return _unary(ctx.ops, "pow", x, sval(p, ctx.scalars))
        return run

    def extremum(self, e: sp.Expr) -> Callable[[Ctx], TV]:
        is_max = isinstance(e, sp.Max)
        scalars = [self.scalar(a) for a in e.args if self.is_scalar(a)]
        bound = _lift(lambda *xs: max(xs) if is_max else min(xs), scalars) if scalars else None
        parts = [self.tensor(a) for a in e.args if not self.is_scalar(a)]
        name, clamp = ("maximum", "clamp_min") if is_max else ("minimum", "clamp_max")

        def run(ctx: Ctx) -> TV:
            acc = parts[0](ctx)
            for p in parts[1:]:
                acc = _binary(ctx.ops, name, acc, p(ctx))
            if bound is not None:
                acc = _unary(ctx.ops, clamp, acc, sval(bound, ctx.scalars))
            return acc
        return run

    def function(self, e: sp.Expr) -> Callable[[Ctx], TV]:
        if len(e.args) != 1:
            raise Unsupported(f"no tensor lowering for {e.func}")
        inner = self.tensor(e.args[0])
        name = primitive_name(type(e))
        if not hasattr(TORCH, name):
            raise Unsupported(f"no tensor lowering for {e.func}")
        return lambda ctx: _unary(ctx.ops, name, inner(ctx))
