"""The grammar's data model: operands, operators and the expression semantics over them."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

import sympy as sp

from .. import expr as ex
from ..limits import check_formula, constant_folder
from ..operators import Operator

BUILTIN_KINDS = ("grad", "param", "step")

@dataclass(frozen=True)
class Operand:
    """One input of an update rule.

    ``kind`` is ``grad``, ``param``, ``step`` (the step count ``t``, from 1), ``ema`` (an
    exponential moving average of ``source`` updated *before* the rule reads it, optionally
    divided by ``1 - beta**t``), ``expr`` (``source`` evaluated each step, no state), ``prev``
    (the value ``source`` had at the previous step, zero at the first) or ``norm`` (the Euclidean
    norm of ``source`` over each parameter tensor, read at every coordinate of it).
    """

    name: str
    kind: str
    source: ex.Expr | None = None
    beta: float | None = None
    debias: bool = False
    nonnegative: bool = False


@dataclass(eq=False, frozen=True)
class Grammar:
    """A parsed, validated grammar. Operands are in dependency order.

    Two grammars loaded from the same YAML text are equal (and hash alike), so formulas parsed
    in separately loaded copies of one grammar compare equal.
    """

    name: str
    operands: dict[str, Operand]
    unary: tuple[str, ...]
    binary: tuple[str, ...]
    constants: tuple[float, ...]
    operators: dict[str, Operator]
    custom: dict[str, tuple[tuple[str, ...], ex.Expr]] = field(default_factory=dict)
    description: str = ""
    source_text: str = ""
    path: str | None = None

    @property
    def key(self) -> tuple:
        """What equal grammars share, picklable: the name and YAML text (else this object's id)."""
        return ("text", self.name, self.source_text) if self.source_text else ("object", id(self))

    def __eq__(self, other) -> bool:
        return isinstance(other, Grammar) and self.key == other.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def arities(self) -> dict[str, int]:
        """Every operator a formula may call (built-ins and custom ones) with its argument count."""
        return {name: op.arity for name, op in self.operators.items()}

    def parse(self, text: str) -> ex.Expr:
        """Parse a formula over this grammar's operands and operators (within :mod:`dsr_l2o.limits`)."""
        tree = ex.parse(text, self.operands, self.arities)
        check_formula(tree, self.custom, constant_folder(self.evaluate))
        return tree

    def symbol(self, name: str) -> sp.Symbol:
        """The sympy symbol of an operand (non-negative where the grammar proves it)."""
        from ..layout import is_step

        operand = self.operands[name]
        if is_step(operand):
            return sp.Symbol(name, positive=True)
        return sp.Symbol(name, nonnegative=True) if operand.nonnegative else sp.Symbol(name, real=True)

    def to_sympy(self, node: ex.Expr) -> sp.Expr:
        """Convert an expression of this grammar to sympy (guarded operators stay guarded)."""
        if isinstance(node, ex.Num):
            v = node.value
            return sp.Integer(int(v)) if v == int(v) and abs(v) < 1e15 else sp.Float(v)
        if isinstance(node, ex.Var):
            return self.symbol(node.name)
        if isinstance(node, ex.Power):
            return _exact_power(self.to_sympy(node.base), node.exponent)
        return self.operators[node.op].sympy(*(self.to_sympy(a) for a in node.args))

    def evaluate(self, node: ex.Expr, env: Mapping[str, Any]) -> Any:
        """Evaluate an expression on tensors (or floats) with the safe torch operators."""
        if isinstance(node, ex.Num):
            return node.value
        if isinstance(node, ex.Var):
            return env[node.name]
        if isinstance(node, ex.Power):
            return _as_tensor(self.evaluate(node.base, env)) ** node.exponent
        values = [self.evaluate(a, env) for a in node.args]
        like = _first_tensor(values)
        return self.operators[node.op].torch(*(_as_tensor(v, like) for v in values))

    def dependencies(self, names) -> list[str]:
        """``names`` and every operand they are defined from, in dependency order."""
        needed, stack = set(), list(names)
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            operand = self.operands[name]
            if operand.source is not None:
                stack.extend(ex.variables(operand.source))
        return [n for n in self.operands if n in needed]


def _first_tensor(values) -> torch.Tensor | None:
    """The first of ``values`` that is a tensor (none are when torch was never imported)."""
    torch = sys.modules.get("torch")
    return None if torch is None else next((v for v in values if isinstance(v, torch.Tensor)), None)


def _as_tensor(value, like: torch.Tensor | None = None) -> torch.Tensor:
    """``value`` as a tensor; numbers take ``like``'s floating dtype and device (else float64)."""
    import torch

    if isinstance(value, torch.Tensor):
        return value
    if like is not None and like.is_floating_point():
        return torch.tensor(float(value), dtype=like.dtype, device=like.device)
    device = like.device if like is not None else None
    return torch.tensor(float(value), dtype=torch.float64, device=device)


def _exact_power(base: sp.Expr, exponent: int) -> sp.Expr:
    """``base ** exponent``; a huge exact rational is raised as a float so sympy stays small."""
    if base.is_Rational:
        bits = max(abs(base.p).bit_length(), base.q.bit_length())
        if bits * exponent > 4096:
            return sp.Float(base, 15) ** exponent
    return base ** exponent


def _nonnegative(node: ex.Expr, operands: Mapping[str, Operand], operators: Mapping[str, Operator]) -> bool:
    """Whether ``node`` is provably >= 0, by each operator's sign rule."""
    if isinstance(node, ex.Num):
        return node.value >= 0
    if isinstance(node, ex.Var):
        return operands[node.name].nonnegative
    if isinstance(node, ex.Power):
        return node.exponent % 2 == 0 or _nonnegative(node.base, operands, operators)
    return operators[node.op].nonnegative(*(_nonnegative(a, operands, operators) for a in node.args))
