"""Programs: a formula compiled once into EMA updates and ``w <- w - lr * f`` (used by the optimizer).

The formula's sympy form (guards already dropped where they provably never fire) is rewritten
over the *raw* optimizer state, as the operand layout says: a debiased EMA operand ``m_hat``
becomes ``c * m`` with the per-step scalar ``c = 1 / (1 - beta**t)``, derived ``expr`` operands
are substituted by their definitions, and a per-tensor ``norm`` operand is computed once per
tensor (between the moving-average updates that feed and read it) and read as a tensor. A
sub-expression that several stages read is computed once per step and released after the last of
them. Anything the compiler does not know falls back to the reference evaluator
(:meth:`dsr_l2o.grammar.Grammar.evaluate`), so values always follow the safe semantics of
:mod:`dsr_l2o.operators`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import sympy as sp
import torch

from ..expr import variables
from ..formula import Formula
from ..layout import OperandLayout, dispatch
from .compiler import Lowerer, count_subexpressions
from .kernels import TV, Ctx, Term, TensorOps, Unsupported, accumulate, sval

# ----------------------------------------------------------------------------- programs


@dataclass
class EmaUpdate:
    """``state[key] <- beta * state[key] + (1 - beta) * source`` for one moving average."""

    key: str
    beta: float
    source: Callable[[Ctx], None]


@dataclass
class NormValue:
    """``norm:name`` <- the Euclidean norm of ``source`` over each tensor, at every coordinate."""

    name: str
    position: int
    """How many moving averages are updated before it is computed (it may read them, and they it)."""
    source: Callable[[Ctx], list[torch.Tensor]]


@dataclass
class Stage:
    """One step of a run before the held values and the update: a norm or a moving average, then
    the memoised sub-expressions no later stage reads (or that read the average it updated)."""

    kind: str
    run: Callable[[Ctx], None]
    release: list[sp.Expr]


@dataclass
class HeldValue:
    """``state[key] <- source`` once the step's update is computed (a ``prev`` operand's buffer)."""

    key: str
    source: Callable[[Ctx], list[torch.Tensor]]


class Program:
    """A formula compiled to tensor ops: EMA updates (with the per-tensor norms in layout order),
    then ``w <- w - lr * f``, then the held values.

    ``state_keys`` names the buffers it needs (one per distinct moving average), ``lowered`` says
    whether the fast path was built for every stage (``False``: the reference evaluator runs at
    least one of them).
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
        self.ema_sources = [(k, b, e) for k, b, e, _ in symbols.ema_sources]
        self.update_expr = formula.sympy.xreplace(self.subs)
        self._counts = count_subexpressions([e for _, _, e, _ in symbols.ema_sources]
                                            + [e for _, _, e, _ in symbols.norm_sources]
                                            + [e for _, e, _ in symbols.held_sources] + [self.update_expr])
        self.emas = [EmaUpdate(k, b, self._ema(b, e, src, lower)) for k, b, e, src in symbols.ema_sources]
        self.held_sources = [(k, e) for k, e, _ in symbols.held_sources]
        self.held = [HeldValue(k, self._held(e, src, lower)) for k, e, src in symbols.held_sources]
        self.norm_sources = [(n, pos, e) for n, pos, e, _ in symbols.norm_sources]
        self.norms = [NormValue(n, pos, self._norm(e, src, lower)) for n, pos, e, src in symbols.norm_sources]
        self.update = self._update(self.update_expr, lower)
        self.stage_order: list[tuple[str, int]] = []
        """The stages before the held values and the update, in run order: ``("norm", i)`` (each
        norm just before the first moving average it may feed) and ``("ema", i)``."""
        for k in range(len(self.emas) + 1):
            self.stage_order += [("norm", n) for n, (_, pos, _) in enumerate(self.norm_sources) if pos == k]
            self.stage_order += [("ema", k)] if k < len(self.emas) else []
        self._plan, self._held_release = self._schedule()

    # building -------------------------------------------------------------------
    def _lowerer(self) -> Lowerer:
        return Lowerer(self.tensor_names, self.scalar_names, self._counts)

    def _source(self, expr: sp.Expr, source, lower: bool) -> tuple[object, Term | None]:
        """A buffer's source: ``(scalar, None)`` when it is a per-step scalar, else ``(None, term)``
        (the reference evaluator's term where the lowering does not know a construct)."""
        if lower:
            try:
                low = self._lowerer()
                expr = low.prepare(expr)
                if low.is_scalar(expr):
                    return low.scalar(expr), None
                return None, low.term(expr) if not expr.is_Add else Term(1.0, [low.tensor(expr)], [], True)
            except Unsupported:
                self.lowered = False
        return None, Term(1.0, [self._reference(source)], [], True)

    def _ema(self, beta: float, expr: sp.Expr, source, lower: bool) -> Callable[[Ctx], None]:
        s, term = self._source(expr, source, lower)
        if term is None:
            return lambda ctx, key: _ema_scalar(ctx, key, beta, sval(s, ctx.scalars))
        return lambda ctx, key: _ema_term(ctx, key, beta, term)

    def _held(self, expr: sp.Expr, source, lower: bool, copy: bool = True) -> Callable[[Ctx], list[torch.Tensor]]:
        """The values of ``expr`` per tensor; with ``copy`` never a tensor that the step changes or
        another stage holds (held values are written into the state after the parameter update)."""
        s, term = self._source(expr, source, lower)
        if term is None:
            return lambda ctx: [torch.full_like(g, sval(s, ctx.scalars)) for g in ctx.tensors["grad"]]
        if len(term.nums) == 1 and not term.dens and term.coef == 1.0:  # one value: taken, or copied once
            value = term.nums[0]

            def single(ctx: Ctx) -> list[torch.Tensor]:
                tv = value(ctx)
                return ctx.ops.out("clone", tv.tensors) if copy and not tv.owned else tv.tensors
            return single

        def run(ctx: Ctx) -> list[torch.Tensor]:
            out = [torch.zeros_like(g) for g in ctx.tensors["grad"]]
            accumulate(ctx, out, term, 1.0)
            return out
        return run

    def _norm(self, expr: sp.Expr, source, lower: bool) -> Callable[[Ctx], list[torch.Tensor]]:
        values = self._held(expr, source, lower, copy=False)  # only reduced, never kept: no copy

        def run(ctx: Ctx) -> list[torch.Tensor]:
            return [torch.linalg.vector_norm(v).expand_as(v) for v in values(ctx)]
        return run

    def _schedule(self) -> tuple[list[Stage], list[sp.Expr]]:
        """The stages of :attr:`stage_order` with what each releases from the memo; and what is
        released once the held values are read."""
        order = [("norm", self.norms[i], self.norm_sources[i][2]) if kind == "norm"
                 else ("ema", self.emas[i], self.ema_sources[i][2]) for kind, i in self.stage_order]
        exprs = [e for _, _, e in order] + [sp.Tuple(*(e for _, e in self.held_sources)), self.update_expr]
        shared = {e for e, n in self._counts.items() if n > 1 and not isinstance(e, sp.Symbol)}
        last = {}
        for i, expr in enumerate(count_subexpressions([e]) for e in exprs):
            last.update((e, i) for e in expr if e in shared)
        releases = [[e for e, i in last.items() if i == k] for k in range(len(exprs))]
        plan = []
        for (kind, item, _), release in zip(order, releases):
            if kind == "ema":
                raw = {s for s, name in self.tensor_names.items() if name == f"state:{item.key}"}
                release = release + [e for e in shared if e.free_symbols & raw and e not in release]
            plan.append(Stage(kind, _stage_run(kind, item), release))
        return plan, releases[len(order)]

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
        for stage in self._plan:
            if stage.kind == "norm":
                stage.run(ctx)
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
        for stage in self._plan:
            stage.run(ctx)
            for expr in stage.release:
                ctx.memo.pop(expr, None)
        held = [(ctx.tensors[f"state:{h.key}"], h.source(ctx)) for h in self.held]
        for expr in self._held_release:
            ctx.memo.pop(expr, None)
        term = self.update
        if term.nums or term.dens:
            accumulate(ctx, params, term, -lr)
        else:
            ops.inplace("add", params, -lr * sval(term.coef, ctx.scalars))
        for buffers, values in held:
            for buffer, value in zip(buffers, values):
                buffer.copy_(value)


def _stage_run(kind: str, item) -> Callable[[Ctx], None]:
    if kind == "ema":
        return lambda ctx: item.source(ctx, f"state:{item.key}")

    def norm(ctx: Ctx) -> None:
        ctx.tensors[f"norm:{item.name}"] = item.source(ctx)
    return norm


class _Symbols:
    """The layout backend that writes a formula over the raw state: tensor and scalar symbols and
    the substitution of every operand by them (a debiased EMA is ``c * raw`` with a per-step ``c``)."""

    def __init__(self, layout: OperandLayout):
        self.layout, self.grammar = layout, layout.grammar
        self.tensor_names: dict[sp.Symbol, str] = {}
        self.scalar_names: dict[sp.Symbol, str] = {}
        self.subs: dict[sp.Symbol, sp.Expr] = {}
        self.ema_sources: list[tuple[str, float, sp.Expr, object]] = []
        self.held_sources: list[tuple[str, sp.Expr, object]] = []
        self.norm_sources: list[tuple[str, int, sp.Expr, object]] = []

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

    def previous(self, op):
        source = self.grammar.to_sympy(op.source).xreplace(self.subs)
        self.held_sources.append((op.name, source, op.source))
        raw = sp.Symbol(f"{op.name}#raw", nonnegative=True) if op.nonnegative else sp.Symbol(f"{op.name}#raw", real=True)
        self.tensor_names[raw] = f"state:{op.name}"
        self._bind(op, raw)

    def norm(self, op):
        source = self.grammar.to_sympy(op.source).xreplace(self.subs)
        self.norm_sources.append((op.name, len(self.ema_sources), source, op.source))
        symbol = sp.Symbol(f"{op.name}#norm", nonnegative=True)
        self.tensor_names[symbol] = f"norm:{op.name}"
        self._bind(op, symbol)


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

    def previous(self, op):
        return self.ctx.tensors[f"state:{op.name}"][self.i]

    def norm(self, op):
        return torch.linalg.vector_norm(_as_like(self.derived(op), self.ctx.tensors["grad"][self.i]))


def _as_like(value, ref: torch.Tensor) -> torch.Tensor:
    """``value`` at every coordinate of ``ref`` (a number or a broadcastable tensor)."""
    if isinstance(value, torch.Tensor):
        return value.expand_as(ref)
    return torch.full_like(ref, float(value))


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
