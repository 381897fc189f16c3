"""The operator registry: the one place a built-in operator is defined.

Each :class:`Builtin` entry carries everything a backend needs, and every backend is built from it:

* ``kernel(o, *args)``: the safe semantics written once over a namespace ``o`` of elementwise
  primitives (:mod:`dsr_l2o.primitives`). Run over torch it is the operator's tensor function;
  over floats its scalar function; over code strings its exported source; over sympy primitives
  the lowering's expansion (:mod:`dsr_l2o.lowering`);
* ``sympy``: the exact sympy form (guarded operators are :mod:`dsr_l2o.safe_sympy` classes);
* ``forms``: the sympy function classes that form may contain, each with its own kernel, bounds
  rule, LaTeX and, for a plain form such as ``exp``, the condition under which it stands for the
  operator (the simplifier's converter, the LaTeX printer and the bounds read these);
* ``latex``, ``doc``, ``infix``/``prefix`` (how the formula language writes it) and the sign rule
  ``nonnegative``.

A new operator is one entry here. An entry that lacks a field fails at import with a message
naming the field. The built-ins, with their safe meaning:

=========  =====  ==================================================================
name       arity  meaning
=========  =====  ==================================================================
neg        1      ``-x``
sign       1      ``sign(x)`` (``sign(0) = 0``)
abs        1      ``|x|``
square     1      ``x**2``
sqrt       1      ``sqrt(|x|)``; derivative capped near 0
exp        1      ``exp(min(x, 20))``
log        1      ``log(max(|x|, 1e-12))``
tanh       1      ``tanh(x)``
atan       1      ``arctan(x)``
relu       1      ``max(x, 0)``
add        2      ``x + y``
sub        2      ``x - y``
mul        2      ``x * y``
div        2      ``x / (sgn(y) * max(|y|, 1e-12))`` with ``sgn(0) = +1``
max        2      ``max(x, y)``
min        2      ``min(x, y)``
pow        2      ``exp(min(y * log(max(|x|, 1e-12)), 20))``, i.e. ``|x|**y`` kept finite
=========  =====  ==================================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Callable

import sympy as sp

from .primitives import interval_abs, interval_exp, interval_log
from .safe_sympy import EXP_MAX, TINY, ClampedExp, LogAbs, SafeDiv, SafePow

Interval = tuple[float, float]
Kernel = Callable[..., object]


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """``sqrt(|x|)`` with a finite derivative everywhere (:func:`dsr_l2o.torch_ops.safe_sqrt`)."""
    return _tensor_side().safe_sqrt(x)


_TORCH_OPS = None


def _tensor_side():
    """:mod:`dsr_l2o.torch_ops`, imported when the first tensor function runs."""
    global _TORCH_OPS
    if _TORCH_OPS is None:
        from . import torch_ops

        _TORCH_OPS = torch_ops
    return _TORCH_OPS


@dataclass(frozen=True)
class Form:
    """A sympy function class an operator's sympy form contains, and how each backend reads it.

    ``kernel`` is its semantics over primitives, ``bounds`` maps the arguments' intervals to
    its own, ``when`` (for a plain form such as ``sp.exp``) tells from the arguments' intervals
    whether it equals the guarded operator, and ``latex`` overrides the operator's LaTeX.
    """

    kernel: Kernel
    bounds: Callable[..., Interval] | None = None
    when: Callable[..., bool] | None = None
    latex: str | None = None


@dataclass(frozen=True)
class Operator:
    """What every consumer of an operator sees: arity, tensor and sympy functions, notation.

    ``torch`` is the safe tensor function (finite values and derivatives for finite inputs),
    ``sympy`` builds the exact sympy form, ``latex`` is a format string over ``{0}``, ``{1}``
    and ``nonnegative(*flags)`` says whether the value is >= 0 given which arguments are.
    """

    name: str
    arity: int
    torch: Callable[..., torch.Tensor]
    sympy: Callable[..., sp.Expr]
    latex: str
    doc: str
    infix: str | None = None
    prefix: str | None = None
    nonnegative: Callable[..., bool] = field(default=lambda *flags: False)
    units: Callable[..., tuple | None] = field(default=lambda *units: units_of_function(*units))
    """Units rule: the unit of the value from the arguments' units (tuples of exponents), ``None``
    where the operator cannot take arguments of those units."""
    commutative: bool = False
    same_units: bool = False
    """Whether the arguments must share a unit (``x + y``)."""


def units_of_function(*units) -> tuple | None:
    """The units rule of a transcendental function: dimensionless in, dimensionless out."""
    return units[0] if all(not any(u) for u in units) else None


@dataclass(frozen=True)
class Builtin:
    """One registry entry (see the module docstring); :func:`build` turns it into an Operator."""

    name: str
    arity: int
    kernel: Kernel
    sympy: Callable[..., sp.Expr]
    latex: str
    doc: str
    nonnegative: Callable[..., bool]
    forms: dict = field(default_factory=dict)
    units: Callable[..., tuple | None] = units_of_function
    infix: str | None = None
    prefix: str | None = None
    differentiable: Callable[..., torch.Tensor] | None = None
    commutative: bool = False


_REQUIRED = ("name", "arity", "kernel", "sympy", "latex", "doc", "nonnegative", "units")


def build(entry: Builtin) -> Operator:
    """The :class:`Operator` of a registry entry; raises ``TypeError`` naming a missing field."""
    for name in _REQUIRED:
        if getattr(entry, name, None) is None:
            raise TypeError(f"operator entry {entry.name!r} lacks the field {name!r}")
    if entry.arity not in (1, 2):
        raise TypeError(f"operator entry {entry.name!r}: arity must be 1 or 2")
    for cls, form in entry.forms.items():
        if not isinstance(form, Form) or not callable(form.kernel):
            raise TypeError(f"operator entry {entry.name!r}: form {cls.__name__} needs a Form with a kernel")

    def tensor_fn(*args):
        return entry.kernel(_tensor_side().TORCH, *args)

    return Operator(entry.name, entry.arity, entry.differentiable or tensor_fn, entry.sympy, entry.latex,
                    entry.doc, entry.infix, entry.prefix, entry.nonnegative, entry.units, entry.commutative,
                    entry.units is _same)


def _always(*flags) -> bool:
    return True


def _never(*flags) -> bool:
    return False


def _all(*flags) -> bool:
    return all(flags)


def _any(*flags) -> bool:
    return any(flags)


def _keep(unit):
    return unit


def _unitless(*units):
    return tuple(0 for _ in units[0])


def _same(a, b):
    return a if a == b else None


def _times(a, b):
    return tuple(x + y for x, y in zip(a, b))


def _per(a, b):
    return tuple(x - y for x, y in zip(a, b))


def _squared(unit):
    return tuple(2 * x for x in unit)


def _root(unit):
    return tuple(x // 2 for x in unit) if all(x % 2 == 0 for x in unit) else None


def _unit(*intervals) -> Interval:
    return -1.0, 1.0


def _clamped_exp(interval: Interval) -> Interval:
    lo, hi = interval
    return interval_exp((min(lo, EXP_MAX), min(hi, EXP_MAX)))


def _log_abs(interval: Interval) -> Interval:
    lo, hi = interval_abs(interval)
    return interval_log((max(lo, TINY), max(hi, TINY)))


def _plain_log(interval: Interval) -> Interval:
    if interval[1] <= 0:
        return -math.inf, math.inf
    return interval_log((max(interval[0], 0.0), interval[1]))


def _positive(*intervals) -> Interval:
    return 0.0, math.inf


REGISTRY: tuple[Builtin, ...] = (
    Builtin("neg", 1, lambda o, x: o.neg(x), lambda x: -x, r"-{0}", "-x", _never, units=_keep, prefix="-"),
    Builtin("sign", 1, lambda o, x: o.sign(x), sp.sign, r"\operatorname{{sign}}\left({0}\right)",
            "sign(x), sign(0) = 0", _never, {sp.sign: Form(lambda o, x: o.sign(x), _unit)}, _unitless),
    Builtin("abs", 1, lambda o, x: o.abs(x), sp.Abs, r"\left|{0}\right|", "|x|", _always,
            {sp.Abs: Form(lambda o, x: o.abs(x), interval_abs)}, _keep),
    Builtin("square", 1, lambda o, x: o.mul(x, x), lambda x: x**2, r"\left({0}\right)^{{2}}", "x**2", _always,
            units=_squared),
    Builtin("sqrt", 1, lambda o, x: o.sqrt(o.abs(x)), lambda x: sp.sqrt(sp.Abs(x)), r"\sqrt{{\left|{0}\right|}}",
            "sqrt(|x|); its derivative is capped near 0", _always, units=_root, differentiable=safe_sqrt),
    Builtin("exp", 1, lambda o, x: o.exp(o.clamp_max(x, EXP_MAX)), ClampedExp, r"\exp\left({0}\right)",
            "exp(min(x, 20))", _always,
            {ClampedExp: Form(lambda o, x: o.exp(o.clamp_max(x, EXP_MAX)), _clamped_exp),
             sp.exp: Form(lambda o, x: o.exp(x), interval_exp, when=lambda x: x[1] <= EXP_MAX)}),
    Builtin("log", 1, lambda o, x: o.log(o.clamp_min(o.abs(x), TINY)), LogAbs, r"\log\left|{0}\right|",
            "log(max(|x|, 1e-12))", _never,
            {LogAbs: Form(lambda o, x: o.log(o.clamp_min(o.abs(x), TINY)), _log_abs),
             sp.log: Form(lambda o, x: o.log(x), _plain_log, when=lambda x: x[0] >= TINY,
                          latex=r"\log\left({0}\right)")}),
    Builtin("tanh", 1, lambda o, x: o.tanh(x), sp.tanh, r"\tanh\left({0}\right)", "tanh(x)", _never,
            {sp.tanh: Form(lambda o, x: o.tanh(x), _unit)}),
    Builtin("atan", 1, lambda o, x: o.atan(x), sp.atan, r"\arctan\left({0}\right)", "arctan(x)", _never,
            {sp.atan: Form(lambda o, x: o.atan(x), lambda x: (-math.pi / 2, math.pi / 2))}),
    Builtin("relu", 1, lambda o, x: o.clamp_min(x, 0.0), lambda x: sp.Max(x, 0), r"\max\left({0}, 0\right)",
            "max(x, 0)", _always, units=_keep),
    Builtin("add", 2, lambda o, x, y: o.add(x, y), lambda x, y: x + y, r"{0} + {1}", "x + y", _all, units=_same,
            infix="+", commutative=True),
    Builtin("sub", 2, lambda o, x, y: o.sub(x, y), lambda x, y: x - y, r"{0} - {1}", "x - y", _never, units=_same,
            infix="-"),
    Builtin("mul", 2, lambda o, x, y: o.mul(x, y), lambda x, y: x * y, r"{0} {1}", "x * y", _all, units=_times,
            infix="*", commutative=True),
    Builtin("div", 2, lambda o, x, y: o.div(x, o.safe_den(y)), SafeDiv, r"\frac{{{0}}}{{{1}}}",
            "x / (sgn(y) * max(|y|, 1e-12)), sgn(0) = +1", _all,
            {SafeDiv: Form(lambda o, x, y: o.div(x, o.safe_den(y)))}, _per, infix="/"),
    Builtin("max", 2, lambda o, x, y: o.maximum(x, y), sp.Max, r"\max\left({0}, {1}\right)", "max(x, y)", _any,
            units=_same, commutative=True),
    Builtin("min", 2, lambda o, x, y: o.minimum(x, y), sp.Min, r"\min\left({0}, {1}\right)", "min(x, y)", _all,
            units=_same, commutative=True),
    Builtin("pow", 2, lambda o, x, y: o.exp(o.clamp_max(o.mul(y, o.log(o.clamp_min(o.abs(x), TINY))), EXP_MAX)),
            SafePow, r"\left|{0}\right|^{{{1}}}", "exp(min(y * log(max(|x|, 1e-12)), 20)), i.e. |x|**y kept finite",
            _always, {SafePow: Form(
                lambda o, x, y: o.exp(o.clamp_max(o.mul(y, o.log(o.clamp_min(o.abs(x), TINY))), EXP_MAX)),
                _positive)}),
)
"""Every built-in operator, in the order the docs list them."""

BUILTIN_OPERATORS: dict[str, Operator] = {entry.name: build(entry) for entry in REGISTRY}
"""Every built-in operator by name."""

FORMS: dict[type, tuple[str, Form]] = {cls: (entry.name, form) for entry in REGISTRY for cls, form in entry.forms.items()}
"""Each sympy function class a built-in's sympy form may contain: ``(operator name, Form)``."""


def form_latex(cls: type) -> str:
    """The LaTeX format string of a form class (its own, else its operator's)."""
    name, form = FORMS[cls]
    return form.latex or BUILTIN_OPERATORS[name].latex


assert {f.name for f in fields(Builtin)} >= set(_REQUIRED)
