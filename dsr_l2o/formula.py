"""Formulas: an update rule ``f(operands)`` parsed in a grammar (``w <- w - lr * f``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Mapping

import sympy as sp
import torch

from . import expr as ex
from .errors import FormulaError
from .grammar import Grammar, load_grammar


@dataclass(frozen=True)
class Formula:
    """A parsed update rule: its expression tree and the grammar it was parsed in."""

    expr: ex.Expr
    grammar: Grammar

    @property
    def text(self) -> str:
        """The formula in the formula language (re-parses to the same tree)."""
        return ex.to_text(self.expr)

    def __str__(self) -> str:
        return self.text

    @property
    def operands(self) -> set[str]:
        """Operand names the formula reads directly."""
        return ex.variables(self.expr)

    @property
    def state_operands(self) -> list[str]:
        """Every operand the formula needs, directly or through definitions, in update order."""
        return self.grammar.dependencies(self.operands)

    @property
    def size(self) -> int:
        """Complexity: the number of nodes of the expression tree."""
        return ex.size(self.expr)

    @cached_property
    def sympy(self) -> sp.Expr:
        """The formula as a sympy expression (guarded operators are :mod:`dsr_l2o.safe_sympy` calls)."""
        return self.grammar.to_sympy(self.expr)

    def latex(self) -> str:
        """The update direction in LaTeX."""
        from .notation import print_latex

        return print_latex(self.sympy)

    def evaluate(self, env: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The update direction for operand values ``env`` (differentiable, safe operators).

        The result has the shape, dtype and device of the first tensor in ``env`` even when the
        formula is a constant; a missing operand raises :class:`~dsr_l2o.errors.FormulaError`.
        """
        missing = sorted(self.operands - set(env))
        if missing:
            raise FormulaError(f"formula {self.text!r} needs operand value(s) for {', '.join(missing)}")
        out = self.grammar.evaluate(self.expr, env)
        ref = next((v for v in env.values() if isinstance(v, torch.Tensor)), None)
        if ref is None:
            return out if isinstance(out, torch.Tensor) else torch.tensor(float(out), dtype=torch.float64)
        if not isinstance(out, torch.Tensor):
            return torch.full_like(ref, float(out), dtype=ref.dtype if ref.is_floating_point() else None)
        if out.shape != ref.shape:
            out = out + torch.zeros_like(ref, dtype=out.dtype)
        return out


def parse_formula(text: str, grammar: Grammar | str | None = None) -> Formula:
    """Parse ``text`` in ``grammar`` (a Grammar, a YAML path or text, or ``None`` for the default).

    Only numbers, the grammar's operand names, ``+ - * / **``, parentheses and calls of the
    grammar's operators are accepted; anything else raises :class:`~dsr_l2o.errors.FormulaError`.
    """
    grammar = load_grammar(grammar)
    return Formula(grammar.parse(text), grammar)
