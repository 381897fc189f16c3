"""Every small formula of a grammar, built bottom-up by size and deduplicated by its values.

A :class:`Library` holds, for each distinct value vector on a set of probe rows (up to a non-zero
factor: the fitted global scale absorbs it), the smallest formula that computes it (formulas equal
on the probes, such as ``sign(g) * sign(m)`` and ``sign(g * m)``, or ``g`` and ``g + g``, are one
entry). Candidates of each size are evaluated in batches with the
grammar's own safe torch operators, so a library of 10**5 formulas costs a few seconds.

Pruning, before any value is computed:

* **units**: ``g``-like and ``w``-like quantities carry dimensions (``v`` is ``g**2``, ``m_tilde``
  is dimensionless, ...); ``+``, ``-``, ``max`` and ``min`` take equal units, ``exp``, ``log``,
  ``tanh`` and custom operators dimensionless arguments, ``sqrt`` an even power;
* **redundancy**: ``neg`` is left out (under a fitted global scale and with ``sub`` and ``div``
  available it adds nothing), operators on constants alone are folded away, commutative
  operators take their arguments in one order only;

* **guards**: a division by a value that is zero on some probe row, a ``log`` of one, or an
  ``exp`` of a value above its clamp is left out (it would fit through the guard, not the formula);

and after: values that are not finite, exceed 1e15 in magnitude, or are constant across the
probes (other than the grammar's constants) are dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import expr as ex
from ..grammar import Grammar
from ..layout import dispatch
from ..operators import BUILTIN_OPERATORS, Operator, units_of_function
from ..safe_sympy import EXP_MAX, TINY

Unit = tuple[int, int]
"""Twice the exponents of the gradient's and the parameter's units (so ``sqrt`` stays whole)."""
DIMENSIONLESS: Unit = (0, 0)
MAX_VALUE = 1e15
CHUNK = 50_000


@dataclass(frozen=True)
class Node:
    """How a library entry is built: a leaf (``name`` or ``value``) or ``op`` over entries ``a``, ``b``."""

    op: str | None = None
    a: int = -1
    b: int = -1
    name: str | None = None
    value: float | None = None


def operand_units(grammar: Grammar) -> dict[str, Unit]:
    """The unit of each operand, inferred from its definition (unknown ones count as dimensionless)."""
    backend = _Units()
    for operand in grammar.operands.values():
        backend.units[operand.name] = dispatch(operand, backend)
    return backend.units


class _Units:
    """The layout backend that gives each operand its unit."""

    def __init__(self):
        self.units: dict[str, Unit] = {}

    def gradient(self, op):
        return (2, 0)

    def parameter(self, op):
        return (0, 2)

    def step(self, op):
        return DIMENSIONLESS

    def derived(self, op):
        found = _infer(op.source, self.units)
        return found if isinstance(found, tuple) else DIMENSIONLESS

    average = previous = norm = derived


def _infer(node: ex.Expr, units: dict[str, Unit]):
    """Unit of ``node``; ``"num"`` for a bare number (fits any unit in a sum), ``None`` if inconsistent."""
    if isinstance(node, ex.Num):
        return "num"
    if isinstance(node, ex.Var):
        return units.get(node.name, DIMENSIONLESS)
    if isinstance(node, ex.Power):
        base = _infer(node.base, units)
        return base if base in ("num", None) else (base[0] * node.exponent, base[1] * node.exponent)
    args = [_infer(a, units) for a in node.args]
    if any(a is None for a in args):
        return None
    if all(a == "num" for a in args):
        return "num"
    operator = _operator(node.op)
    if operator.same_units:
        known = [a for a in args if a != "num"]
        return known[0] if all(k == known[0] for k in known) else None
    found = operator.units(*(DIMENSIONLESS if a == "num" else a for a in args))
    return DIMENSIONLESS if found is None else found


def _operator(op: str) -> Operator:
    """The registry's operator ``op``; a custom operator follows the rule of a function."""
    return BUILTIN_OPERATORS.get(op) or Operator(op, 1, None, None, "", "")


def unary_unit(op: str, unit: Unit, custom: bool) -> Unit | None:
    """The unit of ``op(x)`` for ``x`` of ``unit``, or ``None`` where units forbid it (the
    registry's units rule; a custom operator takes and gives dimensionless values)."""
    return (units_of_function if custom else _operator(op).units)(unit)


def binary_unit(op: str, a: Unit | None, b: Unit | None) -> Unit | None:
    """The unit of ``op(x, y)``, or ``None`` where units forbid it (an epsilon, unit ``None``,
    takes the unit of what it is added to)."""
    if op == "add" and (a is None or b is None):
        return b if a is None else a
    if a is None or b is None:
        return None
    return _operator(op).units(a, b)


def epsilons(grammar: Grammar) -> list[float]:
    """Small positive numbers the grammar's own definitions add (``1e-8`` in ``sqrt(v_hat) + 1e-8``):
    leaves that may be added to a formula of any unit, as an optimizer's epsilon is."""
    found = set()
    for operand in grammar.operands.values():
        if operand.source is not None:
            found |= {n.value for n in ex.numbers(operand.source) if 0 < n.value < 1e-3}
    return sorted(found - set(grammar.constants))


def division_defined(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """Per row: whether every zero of the denominator meets a zero of the numerator (``0 / 0``
    reads 0 under the guard, as an optimizer's ``g / (sqrt(v) + eps)`` does)."""
    return ~((denominator.abs() <= TINY) & (numerator != 0)).any(dim=1)


def guard_free(op: str, argument: torch.Tensor) -> torch.Tensor:
    """Per row of ``argument``: whether the safe operator's guard never fires on it, so the
    formula means what it says (no log of a floored zero, no clamped exp)."""
    if op == "log":
        return (argument.abs() > TINY).all(dim=1)
    if op == "exp":
        return (argument <= EXP_MAX).all(dim=1)
    return torch.ones(argument.shape[0], dtype=torch.bool)


class Library:
    """Distinct formulas of ``grammar`` up to ``max_size`` nodes over the operands ``names``.

    ``values[i]`` is entry ``i`` on the probe rows (float64), ``sizes[i]`` its node count,
    :meth:`expr` its expression tree.
    """

    def __init__(self, grammar: Grammar, probes: dict[str, torch.Tensor], names: list[str], max_size: int = 5,
                 max_terms: int = 150_000, log=None):
        self.grammar, self.max_size = grammar, max_size
        all_units = operand_units(grammar)
        rows = next(iter(probes.values())).numel()
        self._weights = torch.randint(1, 2**61, (rows,), generator=torch.Generator().manual_seed(7),
                                      dtype=torch.int64)
        self._direction = torch.randn(rows, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
        self.nodes: list[Node] = []
        self.units: list[Unit] = []
        self.sizes: list[int] = []
        self._keys: set[int] = set()
        self.is_constant: list[bool] = []
        chunks: list[torch.Tensor] = []
        leaf_values = []
        for name in names:
            leaf_values.append((Node(name=name), all_units[name], probes[name].double()))
        for c in grammar.constants:
            leaf_values.append((Node(value=float(c)), DIMENSIONLESS, torch.full((rows,), float(c), dtype=torch.float64)))
        for c in epsilons(grammar):
            leaf_values.append((Node(value=c), None, torch.full((rows,), c, dtype=torch.float64)))
        first = torch.stack([v for _, _, v in leaf_values])
        keep = self._admit(first, [n for n, _, _ in leaf_values], [u for _, u, _ in leaf_values], 1,
                           allow_constant=True)
        chunks.append(first[keep])
        self.by_size: dict[int, np.ndarray] = {1: np.arange(len(self.nodes))}
        self.values = torch.cat(chunks)
        for size in range(2, max_size + 1):
            if len(self.nodes) >= max_terms:
                break
            start = len(self.nodes)
            self._grow(size, max_terms)
            self.by_size[size] = np.arange(start, len(self.nodes))
            if log:
                log(f"enumerated size {size}: {len(self.nodes) - start} new formulas, {len(self.nodes)} in all")
        self.sizes_t = torch.tensor(self.sizes)

    def __len__(self) -> int:
        return len(self.nodes)

    def _hash(self, values: torch.Tensor) -> torch.Tensor:
        """One integer per row, equal for rows equal up to a non-zero factor."""
        rms = values.square().mean(dim=1, keepdim=True).sqrt().clamp_min(1e-300)
        rms = rms * torch.where(values @ self._direction >= 0, 1.0, -1.0)[:, None]
        bits = torch.round(values / rms * 1e11).to(torch.int64)
        return (bits * self._weights).sum(dim=1)

    def _admit(self, values, nodes, units, size, allow_constant=False) -> torch.Tensor:
        """Keep the new, finite, non-constant rows of ``values``; record their nodes."""
        finite = torch.isfinite(values).all(dim=1)
        if not allow_constant:
            finite &= values.abs().amax(dim=1) < MAX_VALUE
            spread = values.amax(dim=1) - values.amin(dim=1)
            finite &= spread > 1e-12 * values.abs().amax(dim=1).clamp_min(1e-300)
        keys = self._hash(torch.where(finite[:, None], values, torch.zeros_like(values))).tolist()
        keep = []
        for i, (ok, key) in enumerate(zip(finite.tolist(), keys)):
            if ok and (allow_constant or key not in self._keys):  # leaves (operands, constants) all stay
                self._keys.add(key)
                keep.append(i)
                self.nodes.append(nodes[i])
                self.units.append(units[i])
                self.sizes.append(size)
                self.is_constant.append(nodes[i].value is not None)
        return torch.tensor(keep, dtype=torch.int64)

    def _grow(self, size: int, max_terms: int) -> None:
        ops = self.grammar.operators
        custom = set(self.grammar.custom)
        new_values = []
        prev = self.by_size[size - 1]
        for op in self.grammar.unary:
            if op == "neg":
                continue
            ids = [i for i in prev if not self.is_constant[i] and self.units[i] is not None
                   and unary_unit(op, self.units[i], op in custom) is not None]
            if not ids:
                continue
            index = torch.tensor(ids)
            ids = [i for i, ok in zip(ids, guard_free(op, self.values[index]).tolist()) if ok]
            if not ids:
                continue
            index = torch.tensor(ids)
            values = ops[op].torch(self.values[index])
            nodes = [Node(op, i) for i in ids]
            units = [unary_unit(op, self.units[i], op in custom) for i in ids]
            new_values.append(self._admit_chunk(values, nodes, units, size))
            if len(self.nodes) >= max_terms:
                break
        for op in self.grammar.binary:
            if len(self.nodes) >= max_terms or op == "pow":
                break
            for left_size in range(1, size - 1):
                right_size = size - 1 - left_size
                if _operator(op).commutative and left_size > right_size:
                    continue
                for a_ids, b_ids in self._pairs(op, left_size, right_size):
                    if op == "div":
                        ok = division_defined(self.values[a_ids], self.values[b_ids])
                        a_ids, b_ids = a_ids[ok], b_ids[ok]
                    values = ops[op].torch(self.values[a_ids], self.values[b_ids])
                    nodes = [Node(op, a, b) for a, b in zip(a_ids.tolist(), b_ids.tolist())]
                    units = [binary_unit(op, self.units[a], self.units[b]) for a, b in zip(a_ids.tolist(), b_ids.tolist())]
                    new_values.append(self._admit_chunk(values, nodes, units, size))
                    if len(self.nodes) >= max_terms:
                        break
        new_values = [v for v in new_values if v.numel()]
        if new_values:
            self.values = torch.cat([self.values] + new_values)

    def _admit_chunk(self, values, nodes, units, size) -> torch.Tensor:
        keep = self._admit(values, nodes, units, size)
        return values[keep] if keep.numel() else values[:0]

    def _pairs(self, op: str, left_size: int, right_size: int):
        """Batches of ``(left ids, right ids)`` the units allow, in chunks of at most CHUNK."""
        left, right = self.by_size[left_size], self.by_size[right_size]
        groups: dict = {}
        wildcards = []
        for i in right:
            if self.units[i] is None:
                wildcards.append(i)
                continue
            groups.setdefault(self.units[i] if _operator(op).same_units else "any", []).append(i)
        a_all, b_all = [], []
        for a in left:
            if self.units[a] is None:  # an epsilon: only added, to a formula of any unit
                partners = [j for j in right if self.units[j] is not None and not self.is_constant[j]] \
                    if op == "add" else []
            else:
                partners = groups.get(self.units[a] if _operator(op).same_units else "any", [])
                if op == "add" and not self.is_constant[a]:
                    partners = partners + wildcards
            if not partners:
                continue
            b = np.asarray(partners)
            if _operator(op).commutative and left_size == right_size:
                b = b[b >= a]
            if self.is_constant[a]:
                b = np.asarray([j for j in b if not self.is_constant[j]], dtype=np.int64)
            if b.size:
                a_all.append(np.full(b.size, a))
                b_all.append(b)
        if not a_all:
            return
        a_cat, b_cat = np.concatenate(a_all), np.concatenate(b_all)
        for start in range(0, a_cat.size, CHUNK):
            yield torch.from_numpy(a_cat[start:start + CHUNK]), torch.from_numpy(b_cat[start:start + CHUNK])

    def expr(self, i: int) -> ex.Expr:
        """The expression tree of entry ``i``."""
        node = self.nodes[i]
        if node.name is not None:
            return ex.Var(node.name)
        if node.value is not None:
            return ex.Num(node.value)
        if node.b < 0:
            return ex.Call(node.op, (self.expr(node.a),))
        return ex.Call(node.op, (self.expr(node.a), self.expr(node.b)))
