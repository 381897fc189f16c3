"""The operand layout: the one place that knows how each kind of operand is computed.

For a grammar and the operands a formula reads, :class:`OperandLayout` fixes the evaluation
order (dependencies first), the moving-average buffers (one per distinct definition, so ``m``
and ``m_hat`` share one) and the operands read through a bias correction. Every consumer (the
functional tracker of meta-training, the compiled program, the exported source, the notation)
is a *backend* with one method per kind, and :func:`dispatch` calls the right one:

==========  ==================  ============================================================
kind        backend method      value
==========  ==================  ============================================================
grad        ``gradient(op)``    the gradient
param       ``parameter(op)``   the parameter itself
step        ``step(op)``        the step count ``t`` (from 1)
expr        ``derived(op)``     ``op.source`` evaluated over earlier operands, no state
ema         ``average(op)``     the buffer ``beta * s + (1 - beta) * source`` (updated before
                                it is read), divided by ``1 - beta**t`` when ``op.debias``
prev        ``previous(op)``    the buffer holding ``source`` of the previous step (zero at the
                                first); it is read, then set to this step's ``source``
norm        ``norm(op)``        the Euclidean norm of ``op.source`` over each parameter tensor,
                                the same number at every coordinate of that tensor (no state)
==========  ==================  ============================================================

A ``norm`` is the one operand that is not per coordinate: MARS's per-tensor gradient clip and
LAMB's trust ratio read one. A flat vector with no tensor boundaries is one tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from . import expr as ex
from .grammar import Grammar, Operand

_METHODS = {"grad": "gradient", "param": "parameter", "step": "step", "expr": "derived", "ema": "average",
            "prev": "previous", "norm": "norm"}


def dispatch(operand: Operand, backend):
    """``backend.<method>(operand)`` for the operand's kind (see the module table)."""
    return getattr(backend, _METHODS[operand.kind])(operand)


@dataclass(frozen=True)
class Buffer:
    """One moving-average state tensor: its key (the first operand so defined), beta and source."""

    key: str
    beta: float
    source: ex.Expr


class OperandLayout:
    """Evaluation order, shared buffers and debias scalars of ``names`` and what they depend on.

    ``buffers`` are the moving averages (``buffer_of`` maps each ``ema`` operand to its shared
    buffer); ``held`` are the ``prev`` operands, each the key of its own buffer.
    """

    def __init__(self, grammar: Grammar, names: Iterable[str]):
        self.grammar = grammar
        self.order: list[str] = grammar.dependencies(names)
        self.buffers: dict[str, Buffer] = {}
        self.buffer_of: dict[str, str] = {}
        self.held: list[str] = [n for n in self.order if grammar.operands[n].kind == "prev"]
        keys: dict[tuple, str] = {}
        for name in self.order:
            operand = grammar.operands[name]
            if operand.kind != "ema":
                continue
            key = keys.setdefault((ex.to_text(operand.source), operand.beta), name)
            self.buffers.setdefault(key, Buffer(key, operand.beta, operand.source))
            self.buffer_of[name] = key

    @property
    def state_keys(self) -> list[str]:
        """Names of the buffers: the moving averages in update order, then the held values."""
        return list(self.buffers) + self.held

    @property
    def stateful(self) -> list[str]:
        """The operands that keep a buffer (moving averages and held values)."""
        return list(self.buffer_of) + self.held

    @property
    def debiased(self) -> dict[str, float]:
        """``operand -> beta`` for every operand read through ``1 / (1 - beta**t)``."""
        return {n: self.grammar.operands[n].beta for n in self.buffer_of if self.grammar.operands[n].debias}

    @property
    def norms(self) -> list[str]:
        """The operands that are a per-tensor norm (they need the tensors' boundaries)."""
        return [n for n in self.order if self.grammar.operands[n].kind == "norm"]

    def updates(self, name: str) -> bool:
        """Whether reading ``name`` is where its buffer is updated (its first reader in order)."""
        return self.buffer_of.get(name) == name

    def operands(self) -> list[Operand]:
        """The operands in evaluation order."""
        return [self.grammar.operands[n] for n in self.order]

    def walk(self, backend) -> dict[str, object]:
        """Dispatch every operand in order; returns ``name -> backend's value``."""
        return {op.name: dispatch(op, backend) for op in self.operands()}


def gradient_names(grammar: Grammar) -> list[str]:
    """The grammar's operands that are the gradient itself."""
    return [n for n, op in grammar.operands.items() if op.kind == "grad"]


def is_stateful(operand: Operand) -> bool:
    """Whether the operand keeps a buffer from step to step (a moving average or a held value)."""
    return operand.kind in ("ema", "prev")


def moving_averages(grammar: Grammar) -> list[Operand]:
    """The grammar's moving-average operands."""
    return [op for op in grammar.operands.values() if op.kind == "ema"]


def reads_weights_or_time(operand: Operand) -> bool:
    """Whether the operand is the parameter or the step count itself (not a gradient feature)."""
    return operand.kind in ("param", "step")


def terminal_names(grammar: Grammar) -> list[str]:
    """Operands a relaxed formula may read as tensors: every operand but the step count."""
    return [n for n, op in grammar.operands.items() if not is_step(op)]


def is_step(operand: Operand) -> bool:
    """Whether the operand is the step count (a positive whole number, not a tensor of the parameter's values)."""
    return operand.kind == "step"
