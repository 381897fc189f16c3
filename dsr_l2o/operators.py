"""The built-in operators, each defined once: torch function, sympy function and LaTeX side by side.

Every torch function is *safe*: finite values and finite derivatives for every finite input,
and exactly the semantics of its sympy function (see :mod:`dsr_l2o.safe_sympy`):

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

from dataclasses import dataclass
from typing import Callable

import sympy as sp
import torch

from .safe_sympy import EXP_MAX, TINY, ClampedExp, LogAbs, SafeDiv, SafePow


class _SafeSqrt(torch.autograd.Function):
    """``sqrt(|x|)`` whose derivative is ``sign(x) / (2 sqrt(max(|x|, 1e-12)))``: finite at 0."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sqrt(torch.abs(x))

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * torch.sign(x) * 0.5 * torch.rsqrt(torch.clamp_min(torch.abs(x), TINY))


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    return _SafeSqrt.apply(x)


def safe_exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.clamp_max(x, EXP_MAX))


def safe_log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(torch.clamp_min(torch.abs(x), TINY))


def safe_div(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    magnitude = torch.clamp_min(torch.abs(y), TINY)
    return x / torch.where(y < 0, -magnitude, magnitude)


def safe_pow(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return safe_exp(y * safe_log(x))


@dataclass(frozen=True)
class Operator:
    """One operator: its arity, its safe torch function, its sympy function and its LaTeX.

    ``latex`` is a format string over ``{0}``, ``{1}`` (the arguments' LaTeX); ``infix`` is the
    symbol used when the formula language writes the operator between its operands.
    """

    name: str
    arity: int
    torch: Callable[..., torch.Tensor]
    sympy: Callable[..., sp.Expr]
    latex: str
    doc: str
    infix: str | None = None


def _op(name, arity, torch_fn, sympy_fn, latex, doc, infix=None):
    return Operator(name, arity, torch_fn, sympy_fn, latex, doc, infix)


BUILTIN_OPERATORS: dict[str, Operator] = {
    op.name: op
    for op in [
        _op("neg", 1, torch.neg, lambda x: -x, r"-{0}", "-x"),
        _op("sign", 1, torch.sign, sp.sign, r"\operatorname{{sign}}\left({0}\right)", "sign(x), sign(0) = 0"),
        _op("abs", 1, torch.abs, sp.Abs, r"\left|{0}\right|", "|x|"),
        _op("square", 1, torch.square, lambda x: x**2, r"\left({0}\right)^{{2}}", "x**2"),
        _op("sqrt", 1, safe_sqrt, lambda x: sp.sqrt(sp.Abs(x)), r"\sqrt{{\left|{0}\right|}}",
            "sqrt(|x|); its derivative is capped near 0"),
        _op("exp", 1, safe_exp, ClampedExp, r"\exp\left({0}\right)", "exp(min(x, 20))"),
        _op("log", 1, safe_log, LogAbs, r"\log\left|{0}\right|", "log(max(|x|, 1e-12))"),
        _op("tanh", 1, torch.tanh, sp.tanh, r"\tanh\left({0}\right)", "tanh(x)"),
        _op("relu", 1, torch.relu, lambda x: sp.Max(x, 0), r"\max\left({0}, 0\right)", "max(x, 0)"),
        _op("add", 2, torch.add, lambda x, y: x + y, r"{0} + {1}", "x + y", "+"),
        _op("sub", 2, torch.sub, lambda x, y: x - y, r"{0} - {1}", "x - y", "-"),
        _op("mul", 2, torch.mul, lambda x, y: x * y, r"{0} {1}", "x * y", "*"),
        _op("div", 2, safe_div, SafeDiv, r"\frac{{{0}}}{{{1}}}",
            "x / (sgn(y) * max(|y|, 1e-12)), sgn(0) = +1", "/"),
        _op("max", 2, torch.maximum, sp.Max, r"\max\left({0}, {1}\right)", "max(x, y)"),
        _op("min", 2, torch.minimum, sp.Min, r"\min\left({0}, {1}\right)", "min(x, y)"),
        _op("pow", 2, safe_pow, SafePow, r"\left|{0}\right|^{{{1}}}",
            "exp(min(y * log(max(|x|, 1e-12)), 20)), i.e. |x|**y kept finite"),
    ]
}
"""Every built-in operator by name."""
