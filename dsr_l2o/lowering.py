"""Compile a formula once into a short program of tensor operations (used by the optimizer).

The formula's sympy form (guards already dropped where they provably never fire) is rewritten
over the *raw* optimizer state: a debiased EMA operand ``m_hat`` becomes ``c * m`` with the
per-step scalar ``c = 1 / (1 - beta**t)``, derived ``expr`` operands are substituted by their
definitions. The result is lowered node by node: scalar sub-expressions (constants, ``t``,
bias corrections) are evaluated in Python and folded into the ``alpha``/``value`` of fused
tensor ops (``add_``, ``addcmul_``, ``addcdiv_``, ``lerp_``); fresh temporaries are updated in
place. Every op runs on a list of tensors, either as one ``torch._foreach_*`` call or one call
per tensor, so one program serves both paths. Anything the lowering does not know falls back
to the reference evaluator (:meth:`dsr_l2o.grammar.Grammar.evaluate`), so values always follow
the safe semantics of :mod:`dsr_l2o.operators`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Union

import sympy as sp
import torch

from .expr import variables
from .formula import Formula
from .layout import OperandLayout, dispatch
from .operators import FORMS
from .primitives import MATH, SYMPY, TORCH, primitive_name
from .safe_sympy import TINY

Scalar = Union[float, Callable[[dict], float]]

def _has_foreach(name: str, inplace: bool = False) -> bool:
    """Whether torch has a multi-tensor ``_foreach_NAME`` (or ``_foreach_NAME_``) kernel."""
    return hasattr(torch, f"_foreach_{name}{'_' if inplace else ''}")


class Unsupported(Exception):
    """A sympy construct the lowering has no tensor program for (the caller falls back)."""


class TensorOps:
    """Elementwise ops on lists of tensors: one ``torch._foreach_*`` call, or one call per tensor."""

    def __init__(self, foreach: bool):
        self.foreach = foreach

    def out(self, name: str, *args, **kw) -> list[torch.Tensor]:
        """``name(*args)`` as new tensors; list arguments pair up element by element."""
        if self.foreach and _has_foreach(name):
            return list(getattr(torch, f"_foreach_{name}")(*args, **kw))
        fn = getattr(TORCH, name)
        n = next(len(a) for a in args if isinstance(a, list))
        return [fn(*(a[i] if isinstance(a, list) else a for a in args), **kw) for i in range(n)]

    def can_inplace(self, name: str) -> bool:
        """Whether ``name`` has an in-place form (a tensor method ``name_`` or a foreach one)."""
        return (self.foreach and _has_foreach(name, True)) or hasattr(torch.Tensor, f"{name}_")

    def inplace(self, name: str, target: list[torch.Tensor], *args, **kw) -> list[torch.Tensor]:
        """``target <- name(target, *args)`` in place; returns ``target``."""
        if self.foreach and _has_foreach(name, True):
            getattr(torch, f"_foreach_{name}_")(target, *args, **kw)
            return target
        method = getattr(torch.Tensor, f"{name}_", None)
        for i, t in enumerate(target):
            rest = [a[i] if isinstance(a, list) else a for a in args]
            if method is not None:
                method(t, *rest, **kw)
            else:
                getattr(torch, name)(t, *rest, out=t, **kw)
        return target


@dataclass
class TV:
    """A tensor value of the program: one tensor per parameter; ``owned`` ones may be overwritten."""

    tensors: list[torch.Tensor]
    owned: bool


@dataclass
class Ctx:
    """What one run of a program sees: ops, named tensor lists and the per-step scalars."""

    ops: TensorOps
    tensors: dict[str, list[torch.Tensor]]
    scalars: dict[str, float]
    memo: dict


@dataclass
class Term:
    """``coef * prod(nums) / prod(dens)``: a product whose scalar factor is folded into fused ops."""

    coef: Scalar
    nums: list[Callable[[Ctx], TV]]
    dens: list[Callable[[Ctx], TV]]
    fresh: bool = False
    """Computing the term allocates anyway (a product, a quotient or a computed factor)."""


def sval(s: Scalar, env: dict) -> float:
    """The value of a compiled scalar (a constant or a function of the per-step scalars)."""
    return s if isinstance(s, float) else s(env)


# ----------------------------------------------------------------------------- scalar semantics

def _pow(b: float, e: float) -> float:
    value = b**e
    if isinstance(value, complex):
        raise Unsupported("negative base with a fractional exponent")
    return float(value)


def _lift(fn, parts: list[Scalar]) -> Scalar:
    if all(isinstance(p, float) for p in parts):
        return float(fn(*parts))
    return lambda env: fn(*(sval(p, env) for p in parts))


def expand_forms(expr: sp.Expr) -> sp.Expr:
    """Every operator form (:data:`~dsr_l2o.operators.FORMS`) written out in primitives: its kernel
    run over sympy, so that only primitives (``exp``, ``Abs``, ``SafeDen``, ...) remain."""
    def guarded(e):
        return type(e) in FORMS and not _is_primitive(e)

    return expr.replace(guarded, lambda e: FORMS[type(e)][1].kernel(SYMPY, *e.args))


def _is_primitive(e: sp.Expr) -> bool:
    """A one-argument function whose kernel is the primitive of the same name."""
    return len(e.args) == 1 and FORMS[type(e)][1].kernel(SYMPY, *e.args) == e


# ----------------------------------------------------------------------------- the lowering


class Lowerer:
    """Lowers sympy expressions over tensor symbols and scalar symbols into run functions."""

    def __init__(self, tensor_names: dict[sp.Symbol, str], scalar_names: dict[sp.Symbol, str]):
        self.tensor_names, self.scalar_names = tensor_names, scalar_names
        self.counts: Counter = Counter()

    def is_scalar(self, e: sp.Expr) -> bool:
        return not any(s in self.tensor_names for s in e.free_symbols)

    def prepare(self, expr: sp.Expr) -> sp.Expr:
        """Expand operator forms into primitives and count shared sub-expressions (computed once per run)."""
        expr = expand_forms(expr)
        self.counts = Counter(sp.preorder_traversal(expr))
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


def _unary(ops: TensorOps, name: str, x: TV, *args) -> TV:
    if x.owned and ops.can_inplace(name):
        return TV(ops.inplace(name, x.tensors, *args), True)
    return TV(ops.out(name, x.tensors, *args), True)


def _binary(ops: TensorOps, name: str, x: TV, y: TV) -> TV:
    if x.owned:
        return TV(ops.inplace(name, x.tensors, y.tensors), True)
    if y.owned and name in ("mul", "maximum", "minimum"):
        return TV(ops.inplace(name, y.tensors, x.tensors), True)
    return TV(ops.out(name, x.tensors, y.tensors), True)


def _square(ops: TensorOps, x: TV) -> TV:
    if x.owned:
        return TV(ops.inplace("mul", x.tensors, x.tensors), True)
    return TV(ops.out("mul", x.tensors, x.tensors), True)


def accumulate(ctx: Ctx, target: list[torch.Tensor], term: Term, scale: float) -> None:
    """``target += scale * term`` in place, with the term's scalar folded into one fused op."""
    ops = ctx.ops
    c = scale * sval(term.coef, ctx.scalars)
    if not term.nums and not term.dens:
        ops.inplace("add", target, c)
        return
    nums = [n(ctx) for n in term.nums]
    dens = [d(ctx) for d in term.dens]
    den = dens[0] if dens else None
    for d in dens[1:]:
        den = _binary(ops, "mul", den, d)
    keep = 1 if den is not None else 2
    while len(nums) > keep:
        nums = [_binary(ops, "mul", nums[0], nums[1])] + nums[2:]
    if den is not None and not nums:
        ops.inplace("add", target, _unary(ops, "reciprocal", den).tensors, alpha=c)
    elif den is not None:
        ops.inplace("addcdiv", target, nums[0].tensors, den.tensors, value=c)
    elif len(nums) == 2:
        ops.inplace("addcmul", target, nums[0].tensors, nums[1].tensors, value=c)
    else:
        ops.inplace("add", target, nums[0].tensors, alpha=c)


# ----------------------------------------------------------------------------- programs


@dataclass
class EmaUpdate:
    """``state[key] <- beta * state[key] + (1 - beta) * source`` for one moving average."""

    key: str
    beta: float
    source: Callable[[Ctx], None]


class Program:
    """A formula compiled to tensor ops: EMA updates, then ``w <- w - lr * f``.

    ``state_keys`` names the buffers it needs (one per distinct moving average), ``lowered`` says
    whether the fast path was built (``False`` means the reference evaluator runs).
    """

    def __init__(self, formula: Formula, lower: bool = True):
        self.formula = formula
        self.layout = OperandLayout(formula.grammar, formula.operands)
        self.state_keys: list[str] = self.layout.state_keys
        self.state_of: dict[str, str] = dict(self.layout.buffer_of)
        self.debias = {f"c:{name}": beta for name, beta in self.layout.debiased.items()}
        symbols = _Symbols(self.layout)
        self.layout.walk(symbols)
        self.tensor_names, self.scalar_names, self.subs = symbols.tensor_names, symbols.scalar_names, symbols.subs
        self.lowered = lower
        self.emas = [EmaUpdate(k, b, self._ema(b, e, src, lower)) for k, b, e, src in symbols.ema_sources]
        self.update = self._update(formula.sympy.xreplace(self.subs), lower)

    # building -------------------------------------------------------------------
    def _lowerer(self) -> Lowerer:
        return Lowerer(self.tensor_names, self.scalar_names)

    def _ema(self, beta: float, expr: sp.Expr, source, lower: bool) -> Callable[[Ctx], None]:
        if lower:
            try:
                low = self._lowerer()
                expr = low.prepare(expr)
                if low.is_scalar(expr):
                    s = low.scalar(expr)
                    return lambda ctx, key: _ema_scalar(ctx, key, beta, sval(s, ctx.scalars))
                term = low.term(expr) if not expr.is_Add else Term(1.0, [low.tensor(expr)], [], True)
                return lambda ctx, key: _ema_term(ctx, key, beta, term)
            except Unsupported:
                pass
        ref = self._reference(source)
        return lambda ctx, key: _ema_term(ctx, key, beta, Term(1.0, [ref], [], True))

    def _update(self, expr: sp.Expr, lower: bool) -> Term:
        if lower:
            try:
                low = self._lowerer()
                expr = low.prepare(expr)
                if low.is_scalar(expr):
                    return Term(low.scalar(expr), [], [])
                if expr.is_Add:
                    return Term(1.0, [low.tensor(expr)], [], True)
                return low.term(expr)
            except Unsupported:
                self.lowered = False
        return Term(1.0, [self._reference(self.formula.expr)], [], True)

    def _reference(self, node) -> Callable[[Ctx], TV]:
        """Evaluate an expression tree with the safe operators, tensor by tensor (the fallback)."""
        grammar = self.formula.grammar
        layout = OperandLayout(grammar, variables(node))

        def run(ctx: Ctx) -> TV:
            out = []
            for i, ref in enumerate(ctx.tensors["grad"]):
                env = _Reference(layout, ctx, i)
                for op in layout.operands():
                    env.values[op.name] = dispatch(op, env)
                value = grammar.evaluate(node, env.values)
                out.append(value.expand_as(ref).clone() if isinstance(value, torch.Tensor) else torch.full_like(ref, float(value)))
            return TV(out, True)
        return run

    # running --------------------------------------------------------------------
    def scalars(self, t: int) -> dict[str, float]:
        """The per-step scalars: ``t`` and every bias correction ``1 / (1 - beta**t)``."""
        env = {"t": float(t)}
        for key, beta in self.debias.items():
            env[key] = 1.0 / (1.0 - beta**t)
        return env

    def direction(self, ops: TensorOps, params: list[torch.Tensor], grads: list[torch.Tensor],
                  state: dict[str, list[torch.Tensor]], t: int) -> list[torch.Tensor]:
        """The update direction ``f`` for the current state (no EMA update, nothing changed)."""
        ctx = self._ctx(ops, params, grads, state, t)
        out = [torch.zeros_like(g) for g in grads]
        if self.update.nums or self.update.dens:
            accumulate(ctx, out, self.update, 1.0)
        else:
            ops.inplace("add", out, sval(self.update.coef, ctx.scalars))
        return out

    def _ctx(self, ops, params, grads, state, t) -> Ctx:
        tensors = {"grad": grads, "param": params}
        tensors.update({f"state:{k}": v for k, v in state.items()})
        return Ctx(ops, tensors, self.scalars(t), {})

    def run(self, ops: TensorOps, params: list[torch.Tensor], grads: list[torch.Tensor],
            state: dict[str, list[torch.Tensor]], t: int, lr: float, weight_decay: float = 0.0) -> None:
        """One optimizer step on ``params`` (all at step ``t``); updates ``state`` in place."""
        if weight_decay != 0.0:
            ops.inplace("mul", params, 1.0 - lr * weight_decay)
        ctx = self._ctx(ops, params, grads, state, t)
        for ema in self.emas:
            ctx.memo = {}
            ema.source(ctx, f"state:{ema.key}")
        ctx.memo = {}
        term = self.update
        if term.nums or term.dens:
            accumulate(ctx, params, term, -lr)
        else:
            ops.inplace("add", params, -lr * sval(term.coef, ctx.scalars))


class _Symbols:
    """The layout backend that writes a formula over the raw state: tensor and scalar symbols and
    the substitution of every operand by them (a debiased EMA is ``c * raw`` with a per-step ``c``)."""

    def __init__(self, layout: OperandLayout):
        self.layout, self.grammar = layout, layout.grammar
        self.tensor_names: dict[sp.Symbol, str] = {}
        self.scalar_names: dict[sp.Symbol, str] = {}
        self.subs: dict[sp.Symbol, sp.Expr] = {}
        self.ema_sources: list[tuple[str, float, sp.Expr, object]] = []

    def _bind(self, op, value):
        self.subs[self.grammar.symbol(op.name)] = value

    def _tensor(self, op, key):
        symbol = self.grammar.symbol(op.name)
        self.tensor_names[symbol] = key
        return symbol

    def gradient(self, op):
        self._tensor(op, "grad")

    def parameter(self, op):
        self._tensor(op, "param")

    def step(self, op):
        self.scalar_names[self.grammar.symbol(op.name)] = "t"

    def derived(self, op):
        self._bind(op, self.grammar.to_sympy(op.source).xreplace(self.subs))

    def average(self, op):
        key = self.layout.buffer_of[op.name]
        if self.layout.updates(op.name):
            source = self.grammar.to_sympy(op.source).xreplace(self.subs)
            self.ema_sources.append((key, op.beta, source, op.source))
        raw = sp.Symbol(f"{key}#raw", nonnegative=True) if op.nonnegative else sp.Symbol(f"{key}#raw", real=True)
        self.tensor_names[raw] = f"state:{key}"
        if op.debias:
            c = sp.Symbol(f"{op.name}#debias", positive=True)
            self.scalar_names[c] = f"c:{op.name}"
            self._bind(op, c * raw)
        else:
            self._bind(op, raw)


class _Reference:
    """The layout backend of the reference evaluator: operand values of tensor ``i`` of a run."""

    def __init__(self, layout: OperandLayout, ctx: Ctx, i: int):
        self.layout, self.ctx, self.i = layout, ctx, i
        self.values: dict[str, torch.Tensor] = {}

    def gradient(self, op):
        return self.ctx.tensors["grad"][self.i]

    def parameter(self, op):
        return self.ctx.tensors["param"][self.i]

    def step(self, op):
        return torch.tensor(self.ctx.scalars["t"], dtype=self.ctx.tensors["grad"][self.i].dtype)

    def derived(self, op):
        return self.layout.grammar.evaluate(op.source, self.values)

    def average(self, op):
        raw = self.ctx.tensors[f"state:{self.layout.buffer_of[op.name]}"][self.i]
        return raw * self.ctx.scalars[f"c:{op.name}"] if op.debias else raw


def _ema_scalar(ctx: Ctx, key: str, beta: float, value: float) -> None:
    target = ctx.tensors[key]
    ctx.ops.inplace("mul", target, beta)
    ctx.ops.inplace("add", target, (1.0 - beta) * value)


def _ema_term(ctx: Ctx, key: str, beta: float, term: Term) -> None:
    target = ctx.tensors[key]
    if len(term.nums) == 1 and not term.dens and term.coef == 1.0:
        ctx.ops.inplace("lerp", target, term.nums[0](ctx).tensors, 1.0 - beta)
        return
    ctx.ops.inplace("mul", target, beta)
    accumulate(ctx, target, term, 1.0 - beta)


def compile_formula(formula: Formula, lower: bool = True) -> Program:
    """Compile ``formula`` into a :class:`Program` (``lower=False``: reference evaluator only)."""
    return Program(formula, lower)
