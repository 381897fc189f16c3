"""Size limits on formulas after custom operators expand, and on the constants and exponents in them.

A formula's text is short, but a custom operator that reads its argument twice doubles the
expression with every level of nesting, and towers of exact powers or huge constant exponents make
sympy build numbers with millions of digits. :func:`check_formula` measures the expanded tree in
linear time without building it and raises a one-line :class:`~dsr_l2o.errors.FormulaError`.
The limits are documented in ``docs/grammar.md`` ("Limits").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from . import expr as ex
from .errors import FormulaError, shorten

MAX_EXPANDED_NODES = 2000
"""Most nodes a formula may have once every custom operator call is replaced by its body."""
MAX_EXPANDED_DEPTH = 64
"""Deepest tree a formula may have once custom operators are expanded."""
MAX_EXPONENT = 64
"""Largest total exact exponent: the product of ``** n`` and ``square`` along a path, and the
largest constant exponent of ``pow``."""
MAX_CONSTANT = 1e30
"""Largest magnitude of a number or of a constant subexpression (``10**8``) once folded: it must fit
in float32 (3.4e38), which optimizers may run in."""
_CAP = 10**12


@dataclass(frozen=True)
class _Shape:
    """An operator body's expanded size as a function of its arguments' (linear, so exact)."""

    nodes: int
    depth: int
    arg_count: tuple[int, ...]
    arg_depth: tuple[int, ...]
    arg_power: tuple[float, ...]
    power: float


class _Measure:
    def __init__(self, custom: Mapping[str, tuple[tuple[str, ...], ex.Expr]], constant_value):
        self.custom, self.constant_value = custom, constant_value
        self.shapes: dict[str, _Shape] = {}

    def shape(self, name: str) -> _Shape:
        if name not in self.shapes:
            args, body = self.custom[name]
            self.shapes[name] = self.measure(body, args)
        return self.shapes[name]

    def measure(self, node: ex.Expr, args: tuple[str, ...] = ()) -> _Shape:
        """Expanded nodes/depth of ``node`` and how often, how deep and under which power each arg occurs."""
        zeros = (0,) * len(args)
        if isinstance(node, ex.Var) and node.name in args:
            hit = tuple(int(a == node.name) for a in args)
            return _Shape(0, 0, hit, tuple(1 if h else -_CAP for h in hit), tuple(float(h) for h in hit), 0.0)
        if isinstance(node, (ex.Num, ex.Var)):
            return _Shape(1, 1, zeros, (-_CAP,) * len(args), (0.0,) * len(args), 1.0)
        if isinstance(node, ex.Power):
            return self.compose(_Shape(1, 1, (1,), (2,), (float(node.exponent),), 0.0),
                                [self.measure(node.base, args)], args)
        children = [self.measure(a, args) for a in node.args]
        if node.op in self.custom:
            return self.compose(self.shape(node.op), children, args)
        factor = 2.0 if node.op == "square" else 1.0
        if node.op == "pow":
            factor_exp = self.constant_value(node.args[1])
            if factor_exp is not None and abs(factor_exp) > MAX_EXPONENT:
                raise FormulaError(f"exponent {shorten(ex.format_number(factor_exp))} of pow is larger than "
                                   f"{MAX_EXPONENT}; use a smaller power")
        n = len(children)
        return self.compose(_Shape(1, 1, (1,) * n, (2,) * n, (factor,) * n, 0.0), children, args)

    def compose(self, outer: _Shape, inner: list[_Shape], args: tuple[str, ...]) -> _Shape:
        """The shape of ``outer``'s body with its i-th argument replaced by ``inner[i]``."""
        nodes = outer.nodes + sum(c * s.nodes for c, s in zip(outer.arg_count, inner))
        depth = max([outer.depth] + [d + s.depth - 1 for d, s in zip(outer.arg_depth, inner) if d > 0])
        power = max([outer.power] + [p * s.power for p, s in zip(outer.arg_power, inner) if p > 0])
        counts, depths, powers = [], [], []
        for j in range(len(args)):
            counts.append(min(_CAP, sum(c * s.arg_count[j] for c, s in zip(outer.arg_count, inner))))
            depths.append(max([-_CAP] + [d + s.arg_depth[j] - 1 for d, s in zip(outer.arg_depth, inner)
                                         if d > 0 and s.arg_depth[j] > 0]))
            powers.append(max([0.0] + [p * s.arg_power[j] for p, s in zip(outer.arg_power, inner) if p > 0]))
        return _Shape(min(nodes, _CAP), min(depth, _CAP), tuple(counts), tuple(depths), tuple(powers),
                      min(power, 1e300))


def check_formula(tree: ex.Expr, custom: Mapping[str, tuple[tuple[str, ...], ex.Expr]] | None = None,
                  constant_value=None, args: tuple[str, ...] = ()) -> None:
    """Raise :class:`FormulaError` if ``tree`` is too large once ``custom`` operators expand.

    ``custom`` maps an operator name to ``(argument names, body)``; ``constant_value(node)`` is the
    float value of a constant subtree or None (see :func:`constant_folder`); ``args`` are the
    argument names when ``tree`` is itself a custom operator's body.
    """
    fold = constant_value or (lambda node: None)
    for number in ex.numbers(tree):
        if abs(number.value) > MAX_CONSTANT:
            raise FormulaError(f"number {shorten(ex.format_number(number.value))} is larger than "
                               f"{MAX_CONSTANT:g} in magnitude; rescale the formula")
    shape = _Measure(custom or {}, fold).measure(tree, args)
    nodes = shape.nodes + sum(shape.arg_count)
    if nodes > MAX_EXPANDED_NODES:
        raise FormulaError(f"formula has {'over ' if nodes >= _CAP else ''}{min(nodes, _CAP)} "
                           f"nodes once custom operators expand, more than {MAX_EXPANDED_NODES}; "
                           "nest custom operators less")
    if max([shape.depth] + list(shape.arg_depth)) > MAX_EXPANDED_DEPTH:
        raise FormulaError(f"formula is deeper than {MAX_EXPANDED_DEPTH} levels once custom operators "
                           "expand; nest operators less")
    if max([shape.power] + list(shape.arg_power)) > MAX_EXPONENT:
        raise FormulaError(f"formula raises a value to a total power above {MAX_EXPONENT} "
                           "(nested ** and square multiply); use a smaller power")
    _check_constants(tree, fold)
    _Coefficients(custom or {}).walk(tree, {})


def _check_constants(tree: ex.Expr, fold) -> None:
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ex.Call, ex.Power)) and not ex.variables(node):
            value = fold(node)
            if value is not None and not (math.isfinite(value) and abs(value) <= MAX_CONSTANT):
                raise FormulaError(f"constant {shorten(ex.to_text(node))} is larger than {MAX_CONSTANT:g} "
                                   "in magnitude once folded; rescale the formula")
            continue
        stack.extend(node.args if isinstance(node, ex.Call) else (node.base,) if isinstance(node, ex.Power) else ())


class _Coefficients:
    """Bounds ``(hi, lo)`` on log10 of the numeric factor sympy may fold out of each subtree
    (``(1e20 * g) * 1e20`` becomes ``1e40*g``); every one must stay within MAX_CONSTANT."""

    LIMIT = math.log10(MAX_CONSTANT)

    def __init__(self, custom):
        self.custom = custom

    def walk(self, node: ex.Expr, env) -> tuple[float, float]:
        if isinstance(node, ex.Num):
            magnitude = math.log10(abs(node.value)) if node.value else 0.0
            bounds = (magnitude, magnitude)
        elif isinstance(node, ex.Var):
            bounds = env.get(node.name, (0.0, 0.0))
        elif isinstance(node, ex.Power):
            hi, lo = self.walk(node.base, env)
            bounds = (node.exponent * hi, node.exponent * lo)
        else:
            args = [self.walk(a, env) for a in node.args]
            bounds = self.call(node.op, args)
        if bounds[0] > self.LIMIT + 1e-9:
            raise FormulaError(f"constant factors multiply to more than {MAX_CONSTANT:g} in "
                               f"{shorten(ex.to_text(node), 60)}; rescale the formula")
        return bounds

    def call(self, op, args):
        if op in self.custom:
            names, body = self.custom[op]
            return self.walk(body, dict(zip(names, args)))
        k = _degree(op)
        if k is not None:
            return (k * args[0][0], k * args[0][1])
        if op == "mul":
            return (args[0][0] + args[1][0], args[0][1] + args[1][1])
        if op == "div":
            return (args[0][0] - args[1][1], args[0][1] - args[1][0])
        if op in ("add", "sub", "max", "min"):
            return (max(a[0] for a in args), min(a[1] for a in args))
        return (0.0, 0.0)


def _degree(op: str) -> float | None:
    """How a one-argument operator scales a numeric factor of its argument (``sqrt``: 1/2), read
    from the registry's units rule; ``None`` where it does not pass a factor through."""
    from .operators import BUILTIN_OPERATORS

    operator = BUILTIN_OPERATORS.get(op)
    if operator is None or operator.arity != 1:
        return None
    unit = operator.units((2,))
    return None if unit is None or unit == (0,) else unit[0] / 2


def constant_folder(evaluate):
    """``node -> float | None``: ``evaluate(node, {})`` as a float, ``inf`` when it overflows."""

    def value(node: ex.Expr) -> float | None:
        if ex.variables(node):
            return None
        try:
            out = evaluate(node, {})
            return float(out)
        except (OverflowError, ZeroDivisionError, ValueError, RuntimeError):
            return math.inf
        except (TypeError, KeyError):
            return None

    return value
