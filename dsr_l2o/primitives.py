"""The elementwise primitives operator kernels are written in, and one namespace per backend.

A kernel (:mod:`dsr_l2o.operators`) calls primitives such as ``o.exp``, ``o.clamp_max`` or
``o.safe_den`` on a namespace ``o``. A primitive is named after its torch function, so a backend
finds most of them by name (``torch.atan``, ``math.atan``, ``sympy.atan``, ``torch._foreach_atan``);
only the few below whose spelling differs per backend are written out. Namespaces:

* :data:`TORCH`: tensors (the operators' tensor functions and the batched engine), defined in
  :mod:`dsr_l2o.torch_ops` and imported from here on first use;
* :data:`MATH`: Python floats (scalar sub-expressions folded by the lowering);
* :class:`CodeOps`: Python source strings (the exported optimizer);
* :data:`SYMPY`: sympy primitives, so the lowering can expand a guarded form into primitives.
"""

from __future__ import annotations

import math

import sympy as sp

TINY_DEN = 1e-12
"""Floor of the denominator's magnitude in ``safe_den`` (``safe_sympy.TINY``)."""

SPECIAL = ("neg", "sign", "abs", "add", "sub", "mul", "div", "maximum", "minimum", "clamp_min", "clamp_max",
           "safe_den", "sqrt")
"""Primitives whose spelling differs between backends; every other one is found by name."""


def _exp(x: float) -> float:
    return math.exp(x) if x < 700 else math.inf


def _sign(x: float) -> float:
    return float((x > 0) - (x < 0))


def _safe_den(y: float) -> float:
    magnitude = max(abs(y), TINY_DEN)
    return -magnitude if y < 0 else magnitude


class MathOps:
    """Primitives on Python floats (same values as :class:`~dsr_l2o.torch_ops.TorchOps` in float64)."""

    neg = staticmethod(lambda x: -x)
    sign, abs, exp, safe_den = staticmethod(_sign), staticmethod(abs), staticmethod(_exp), staticmethod(_safe_den)
    sqrt = staticmethod(math.sqrt)
    add = staticmethod(lambda x, y: x + y)
    sub = staticmethod(lambda x, y: x - y)
    mul = staticmethod(lambda x, y: x * y)
    div = staticmethod(lambda x, y: x / y)
    maximum = clamp_min = staticmethod(max)
    minimum = clamp_max = staticmethod(min)

    def __getattr__(self, name):
        return getattr(math, name)


def _code(value) -> str:
    return value if isinstance(value, str) else repr(float(value))


class CodeOps:
    """Primitives as torch source text; records the helper functions the text calls.

    Arguments are source strings or Python floats; a primitive of floats only is folded to a float.
    """

    _INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/"}

    def __init__(self):
        self.helpers: set[str] = set()

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)

        def call(*args):
            if not any(isinstance(a, str) for a in args):
                return float(getattr(MATH, name)(*args))
            text = ", ".join(_code(a) for a in args)
            if name == "neg":
                return f"(-{text})"
            if name in self._INFIX:
                return f"({_code(args[0])} {self._INFIX[name]} {_code(args[1])})"
            if name in HELPER_SOURCE:
                self.helpers.add(name)
                return f"{name}({text})"
            return f"torch.{name}({text})"
        return call


HELPER_SOURCE = {
    "safe_den": f'''def safe_den(y):
    """sgn(y) * max(|y|, {TINY_DEN:g}) with sgn(0) = +1: a denominator that is never zero."""
    magnitude = torch.clamp_min(torch.abs(y), {TINY_DEN!r})
    return torch.where(y < 0, -magnitude, magnitude)
''',
}
"""Source of each helper :class:`CodeOps` may call, for the exported module."""


class SympyOps:
    """Primitives as plain sympy (``safe_den`` stays a function of its own): the lowering's input."""

    neg = staticmethod(lambda x: -x)
    add = staticmethod(lambda x, y: x + y)
    sub = staticmethod(lambda x, y: x - y)
    mul = staticmethod(lambda x, y: x * y)
    div = staticmethod(lambda x, y: x * y**-1)
    sign, abs, sqrt = staticmethod(sp.sign), staticmethod(sp.Abs), staticmethod(sp.sqrt)
    maximum = clamp_min = staticmethod(sp.Max)
    minimum = clamp_max = staticmethod(sp.Min)

    @staticmethod
    def safe_den(y):
        from .safe_sympy import SafeDen

        return SafeDen(y)

    def __getattr__(self, name):
        return getattr(sp, name)


def primitive_name(cls: type) -> str:
    """The primitive a plain sympy function class stands for (``Abs`` -> ``abs``, ``SafeDen`` -> ``safe_den``)."""
    name = cls.__name__
    return "".join(("_" + c.lower()) if c.isupper() and i else c.lower() for i, c in enumerate(name))


MATH, SYMPY = MathOps(), SympyOps()


def __getattr__(name: str):
    if name in ("TORCH", "TorchOps"):  # the tensor namespace imports torch: only when it is asked for
        from . import torch_ops

        return getattr(torch_ops, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def interval_abs(interval: tuple[float, float]) -> tuple[float, float]:
    """Bounds of ``|x|`` for ``x`` in ``interval``."""
    lo, hi = interval
    if lo >= 0:
        return lo, hi
    if hi <= 0:
        return -hi, -lo
    return 0.0, max(-lo, hi)


def interval_exp(interval: tuple[float, float]) -> tuple[float, float]:
    """Bounds of ``exp(x)``."""
    return tuple(0.0 if x == -math.inf else (math.inf if x > 700 else math.exp(x)) for x in interval)


def interval_log(interval: tuple[float, float]) -> tuple[float, float]:
    """Bounds of ``log(x)`` for ``x`` in a non-negative ``interval``."""
    return tuple(-math.inf if x <= 0 else (math.inf if x == math.inf else math.log(x)) for x in interval)
