"""The fused step: a program written as one pure tensor function that ``torch.compile`` turns
into a single generated kernel per formula (Inductor emits C++ on CPU and Triton on CUDA).

The formula's sympy form over the raw state (the same one :class:`~.program.Program` lowers, guards
already dropped where they provably never fire) becomes a tree of closures that compute values
out of place; the step reads every tensor once and writes the parameter and each moving average
once (a per-tensor norm reads its source once more, for the reduction). The per-step scalars
(learning rate, the weight-decay factor, ``t`` and the bias corrections) travel as one small
tensor, so a new step or a scheduled learning rate does not recompile. One compiled call updates
up to :data:`CHUNK` tensors: the call overhead is paid once per chunk, not once per tensor, and
the trace, which grows with the tensors of one call, stays bounded, so the first step of a model
with hundreds of tensors compiles a few kernels of at most :data:`CHUNK` tensors, not one of all.
"""

from __future__ import annotations

import types
import warnings
from typing import Callable

import sympy as sp
import torch

from ..primitives import MATH, TORCH, primitive_name
from .compiler import expand_forms
from .kernels import Unsupported

Value = object
"""A value while the step runs: a tensor, a 0-d scalar tensor or a Python float."""

BACKEND: str | Callable = "inductor"
"""The ``torch.compile`` backend of the fused path (tests swap it for a cheaper or a failing one)."""

CHUNK = 16
"""Tensors per compiled call: a list of any length runs as chunks of this many and one shorter
remainder, so two kernels are compiled per dtype whatever the number of tensors (up to three
more when some tensors hold one element, which dynamo traces apart; the optimizer runs them last)."""

SCALARS = ("lr", "decay", "t")
"""The first entries of the per-step scalar tensor; the bias corrections follow."""


def _apply(name: str, *args: Value) -> Value:
    """Primitive ``name`` on floats (folded in Python) or on tensors."""
    if all(isinstance(a, float) for a in args):
        return float(getattr(MATH, name)(*args))
    return getattr(TORCH, name)(*args)


class _Functional:
    """Lowers a sympy expression over tensor and scalar symbols into a closure ``env -> value``."""

    def __init__(self, tensor_names: dict[sp.Symbol, str], scalar_index: dict[sp.Symbol, int]):
        self.tensor_names, self.scalar_index = tensor_names, scalar_index

    def lower(self, e: sp.Expr) -> Callable[[dict], Value]:
        if isinstance(e, sp.Symbol):
            if e in self.tensor_names:
                name = self.tensor_names[e]
                return lambda env: env[name]
            index = self.scalar_index[e]
            return lambda env: env["#scalars"][index]
        if not e.free_symbols:
            value = complex(e.evalf())
            if value.imag != 0:
                raise Unsupported(f"complex constant {e}")
            return lambda env, v=float(value.real): v
        parts = [self.lower(a) for a in e.args]
        if e.is_Add:
            return lambda env: _fold(lambda x, y: x + y, [p(env) for p in parts])
        if e.is_Mul:
            return lambda env: _fold(lambda x, y: x * y, [p(env) for p in parts])
        if e.is_Pow:
            return self.power(e, parts[0])
        if isinstance(e, (sp.Max, sp.Min)):
            name = "maximum" if isinstance(e, sp.Max) else "minimum"
            return lambda env: _fold(lambda x, y: _extremum(name, x, y), [p(env) for p in parts])
        name = primitive_name(type(e))
        if len(e.args) != 1 or not hasattr(TORCH, name):
            raise Unsupported(f"no tensor lowering for {e.func}")
        inner = parts[0]
        return lambda env: _apply(name, inner(env))

    def power(self, e: sp.Pow, base: Callable[[dict], Value]) -> Callable[[dict], Value]:
        exponent = e.exp
        if exponent.free_symbols:
            raise Unsupported("tensor exponent")
        nonneg = bool(e.base.is_nonnegative)
        if exponent == 2:
            return lambda env: _square(base(env))
        if exponent == -1:
            return lambda env: 1.0 / base(env)
        if exponent == sp.Rational(1, 2):
            return lambda env: _apply("sqrt", _magnitude(base(env), nonneg))
        if exponent == sp.Rational(-1, 2):
            return lambda env: 1.0 / _apply("sqrt", _magnitude(base(env), nonneg))
        p = float(exponent)
        if exponent.is_Integer:
            return lambda env: base(env) ** p
        if nonneg:
            return lambda env: base(env) ** p
        return lambda env: _apply("abs", base(env)) ** p


def _fold(fn, values: list[Value]) -> Value:
    acc = values[0]
    for v in values[1:]:
        acc = fn(acc, v)
    return acc


def _square(x: Value) -> Value:
    return x * x


def _magnitude(x: Value, nonneg: bool) -> Value:
    return x if nonneg else _apply("abs", x)


def _extremum(name: str, x: Value, y: Value) -> Value:
    if isinstance(x, float) and isinstance(y, float):
        return max(x, y) if name == "maximum" else min(x, y)
    if isinstance(x, float):
        x, y = y, x
    if isinstance(y, float):
        return (torch.clamp_min if name == "maximum" else torch.clamp_max)(x, y)
    return getattr(torch, name)(x, y)


class FusedStep:
    """A :class:`~.program.Program`'s whole step as one pure function over lists of tensors.

    ``run`` is the eager form; ``compiled`` is the same function through ``torch.compile``
    (built on first use). Raises :class:`Unsupported` when a construct has no lowering.
    """

    def __init__(self, program):
        self.program = program
        self.state_keys = list(program.state_keys)
        debias = list(program.debias)
        scalar_index = {}
        for symbol, name in program.scalar_names.items():
            scalar_index[symbol] = SCALARS.index(name) if name in SCALARS else len(SCALARS) + debias.index(name)
        self.debias = debias
        low = _Functional(program.tensor_names, scalar_index)
        emas = [(f"state:{key}", beta, low.lower(expand_forms(source))) for key, beta, source in program.ema_sources]
        norms = [(f"norm:{name}", None, low.lower(expand_forms(source))) for name, _, source in program.norm_sources]
        self.stages = [emas[i] if kind == "ema" else norms[i] for kind, i in program.stage_order]
        """``(env key, beta, source)`` in the program's stage order; a norm has no beta."""
        self.held = [(f"state:{key}", low.lower(expand_forms(source))) for key, source in program.held_sources]
        self.update = low.lower(expand_forms(program.update_expr))
        self._compiled = None

    def scalars(self, t: int, lr: float, weight_decay: float, like: torch.Tensor) -> torch.Tensor:
        """The per-step scalar tensor: lr, ``1 - lr * weight_decay``, ``t``, the bias corrections."""
        env = self.program.scalars(t)
        values = [lr, 1.0 - lr * weight_decay, float(t)] + [env[k] for k in self.debias]
        dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
        return torch.tensor(values, dtype=dtype, device=like.device)

    def run(self, params: list[torch.Tensor], grads: list[torch.Tensor],
            states: list[list[torch.Tensor]], scalars: torch.Tensor, decays: bool = True) -> None:
        """One step on every tensor of the lists; ``states[k][i]`` is buffer ``state_keys[k]`` of tensor ``i``.

        ``decays=False`` (no weight decay) skips the multiplication by ``scalars[1]``.
        """
        lr, decay = scalars[0], scalars[1]
        for i, p in enumerate(params):
            w = p * decay if decays else p
            env = {"grad": grads[i], "param": w, "#scalars": scalars}
            for k, key in enumerate(self.state_keys):
                env[f"state:{key}"] = states[k][i]
            for name, beta, source in self.stages:
                value = source(env)
                if beta is None:  # a per-tensor norm, a 0-d tensor
                    value = value.expand_as(w) if isinstance(value, torch.Tensor) else torch.full_like(w, value)
                    env[name] = torch.linalg.vector_norm(value)
                    continue
                old = env[name]
                new = torch.lerp(old, value, 1.0 - beta) if isinstance(value, torch.Tensor) else old * beta + value * (1.0 - beta)
                env[name] = new
                old.copy_(new)
            held = [(env[name], source(env)) for name, source in self.held]
            new = w - lr * self.update(env)
            for old, value in held:  # written after everything read them, before the parameter
                old.copy_(value) if isinstance(value, torch.Tensor) else old.fill_(value)
            p.copy_(new)

    def compiled(self) -> Callable:
        """``run`` compiled with ``torch.compile`` (dynamic shapes, one graph, no graph breaks); call
        it on at most :data:`CHUNK` tensors at a time (:func:`chunks`)."""
        if self._compiled is None:
            # A code object of its own: dynamo keeps its cache on the code object and matches the
            # closures by id, so one shared by every FusedStep could run a freed twin's graph.
            run = FusedStep.run
            code = run.__code__.replace(co_name=f"fused_step_{len(self.state_keys)}")
            own = types.FunctionType(code, run.__globals__, code.co_name, run.__defaults__)
            compiled = torch.compile(types.MethodType(own, self), backend=BACKEND, dynamic=True, fullgraph=True)
            traced = set()

            def call(params, grads, states, scalars, decays=True):
                # what dynamo specializes on: the number of tensors, their dtype and device, which hold one element
                key = (params[0].dtype, params[0].device, tuple(p.numel() == 1 for p in params)) if params else None
                if key in traced:  # compiled already: skip the patches' per-call cost
                    return compiled(params, grads, states, scalars, decays)
                out = _tracing(compiled)(params, grads, states, scalars, decays)
                traced.add(key)
                return out

            self._compiled = call
        return self._compiled


def _tracing(fn: Callable) -> Callable:
    """``fn`` under the settings its first (tracing) calls need: the formula's constants (betas,
    coefficients) become literals of the kernel, not inputs, and sizes equal by chance (two tensors
    of one chunk, or a tensor and the scalars) stay separate symbols, so the next chunk reuses the
    kernel. A torch without a setting traces without it."""
    from torch._dynamo import config

    fn = config.patch(specialize_float=True)(fn)
    try:
        from torch.fx.experimental import _config as shapes
    except ImportError:
        return fn
    return shapes.patch(use_duck_shape=False)(fn) if hasattr(shapes, "use_duck_shape") else fn


def chunks(n: int) -> list[slice]:
    """The slices of ``n`` tensors that one compiled call each takes: :data:`CHUNK` at a time."""
    return [slice(i, i + CHUNK) for i in range(0, n, CHUNK)]


def fused_step(program) -> FusedStep | None:
    """The fused step of ``program``, or ``None`` (with one warning) when it has no lowering."""
    try:
        return FusedStep(program)
    except Unsupported as err:
        warnings.warn(f"fused step unavailable for {program.formula.text!r} ({err}); using the eager path",
                      RuntimeWarning, stacklevel=3)
        return None


def compile_available() -> bool:
    """Whether this torch can compile at all (``torch.compile`` exists and supports this Python)."""
    if not hasattr(torch, "compile"):
        return False
    try:
        from torch import _dynamo

        return bool(_dynamo.is_dynamo_supported())
    except Exception:  # an installation without a working dynamo
        return False
