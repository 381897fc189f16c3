r"""The continuous relaxation of a grammar's formulas: a full binary tree of mixed operators.

Shape (``depth`` = D): ``2**D`` leaves and ``2**D - 1`` internal nodes, stored heap-style (node
``i`` has children ``2i+1`` and ``2i+2``; leaves follow the internal nodes). Each

* **leaf** is ``u(c * x)``: ``x`` a softmax mixture of the terminals (the grammar's operands and
  constants), ``c = exp(s)`` a learnable scale, ``u`` a softmax mixture of ``identity`` and the
  grammar's unary operators;
* **internal node** is ``u(b(left, right))``: ``b`` a mixture of ``left`` (pass the left child
  through) and the binary operators, ``u`` as above.

The rule's update direction is the root's value; the step size ``exp(log_lr)`` is learnable too.
A mixture is ``sum_i softmax(logits / T)_i * op_i(x)`` (temperature ``T``; ``T = 0`` means the
argmax, one-hot), each mixture output clamped to ``[-1e6, 1e6]`` so nothing overflows. Every
operator is the safe one from :mod:`dsr_l2o.operators`, so values and derivatives stay finite.

Discretisation is not done here: :meth:`RelaxedRule.slots` exposes the logits with their labels,
and :mod:`dsr_l2o.search.discretize` turns them into a formula.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..expr import format_number
from ..grammar import Grammar
from ..layout import terminal_names

IDENTITY = "identity"
LEFT = "left"
CLAMP = 1e6


@dataclass(frozen=True)
class Slot:
    """One categorical choice of the relaxation: its kind, its tree position and its labels."""

    kind: str  # "terminal" | "leaf_unary" | "binary" | "node_unary"
    index: int  # position in the heap-ordered tree
    labels: tuple[str, ...]


def terminal_labels(grammar: Grammar) -> tuple[str, ...]:
    """Terminals a leaf may read: every operand except the step count, then the constants."""
    operands = terminal_names(grammar)
    return tuple(operands) + tuple(format_number(c) for c in grammar.constants)


class RelaxedRule(nn.Module):
    """A differentiable mixture over every formula of ``grammar`` up to a tree of ``depth``."""

    def __init__(self, grammar: Grammar, depth: int = 2, init_lr: float = 1e-2, init_bias: float = 0.0):
        super().__init__()
        if depth < 1:
            raise ValueError("depth must be at least 1")
        self.grammar, self.depth = grammar, depth
        self.terminals = terminal_labels(grammar)
        self.unary = (IDENTITY,) + tuple(grammar.unary)
        self.binary = (LEFT,) + tuple(grammar.binary)
        self.n_nodes, self.n_leaves = 2**depth - 1, 2**depth
        self.leaf_logits = nn.Parameter(torch.zeros(self.n_leaves, len(self.terminals)))
        self.leaf_unary_logits = nn.Parameter(torch.zeros(self.n_leaves, len(self.unary)))
        self.node_binary_logits = nn.Parameter(torch.zeros(self.n_nodes, len(self.binary)))
        self.node_unary_logits = nn.Parameter(torch.zeros(self.n_nodes, len(self.unary)))
        self.leaf_log_scale = nn.Parameter(torch.zeros(self.n_leaves))
        self.log_lr = nn.Parameter(torch.tensor(math.log(init_lr)))
        self._constants = [float(c) for c in grammar.constants]
        with torch.no_grad():  # start near "a mixture of the operands": identity and pass-through
            self.leaf_unary_logits[:, 0] += init_bias
            self.node_unary_logits[:, 0] += init_bias
            self.node_binary_logits[:, 0] += init_bias

    @property
    def operand_names(self) -> list[str]:
        """Operands the relaxation reads (they must be supplied to :meth:`forward`)."""
        return [t for t in self.terminals[: len(self.terminals) - len(self._constants)]]

    def slots(self) -> list[tuple[Slot, torch.Tensor]]:
        """Every categorical choice with its logits, root first (for discretisation and plots)."""
        out = []
        for i in range(self.n_nodes):
            out.append((Slot("node_unary", i, self.unary), self.node_unary_logits[i]))
            out.append((Slot("binary", i, self.binary), self.node_binary_logits[i]))
        for j in range(self.n_leaves):
            out.append((Slot("leaf_unary", self.n_nodes + j, self.unary), self.leaf_unary_logits[j]))
            out.append((Slot("terminal", self.n_nodes + j, self.terminals), self.leaf_logits[j]))
        return out

    def leaf_scales(self) -> torch.Tensor:
        """The learnable multiplier of each leaf's terminal."""
        return self.leaf_log_scale.exp()

    def lr(self) -> torch.Tensor:
        """The learnable step size."""
        return self.log_lr.exp()

    def forward(self, values: dict[str, torch.Tensor], temperature: float,
                scales: dict[str, torch.Tensor] | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """The relaxed update direction for operand ``values`` (tensors of one shape).

        Soft mode (no ``generator``): every mixture is the softmax-weighted sum of its candidates,
        each divided by its entry of ``scales`` (from :meth:`measure_scales`) so that candidates
        of very different magnitude mix on equal terms.

        Sampled mode (a ``generator``): every mixture draws one candidate from
        ``softmax(logits / T)`` (Gumbel-max); the value is exactly that discrete formula's, and
        gradients reach the logits through the straight-through estimator, each candidate's
        contribution rescaled to the magnitude of the one drawn.

        At ``temperature <= 0`` every mixture takes its argmax: the output is exactly the
        selected formula's value.
        """
        return self._run(values, temperature, scales, generator=generator)[0]

    def measure_scales(self, values: dict[str, torch.Tensor], temperature: float) -> dict[str, torch.Tensor]:
        """Each candidate's RMS over the parameters at these operand values (detached)."""
        with torch.no_grad():
            return self._run(values, temperature, None, measure=True)[1]

    def _run(self, values, temperature, scales, measure=False, generator=None):
        found: dict[str, torch.Tensor] = {}

        def mix(key, outputs, logits):
            stacked = torch.stack(outputs, dim=1)  # [rows, candidates, N]
            if temperature <= 0:
                return _pick(stacked, logits.argmax(-1))
            if generator is not None:
                return _sampled(stacked, logits, temperature, generator)
            if measure:
                found[key] = _rms(stacked)
            if scales is not None or measure:
                stacked = stacked / (scales[key] if scales is not None else found[key])
            mixed = (_weights(logits, temperature).unsqueeze(-1) * stacked).sum(dim=1)
            return torch.clamp(mixed, -CLAMP, CLAMP)

        ops = self.grammar.operators
        like = values[self.operand_names[0]]
        columns = [values[n] for n in self.operand_names]
        columns += [torch.full_like(like, c) for c in self._constants]
        leaves = mix("terminal", [c.expand(self.n_leaves, -1) for c in columns],
                     self.leaf_logits) * self.leaf_scales()[:, None]
        level = mix("leaf_unary", [leaves] + [ops[n].torch(leaves) for n in self.unary[1:]],
                    self.leaf_unary_logits)
        first, depth = self.n_nodes, 0
        while first > 0:
            first = (first - 1) // 2  # first node of the level above
            rows = slice(first, 2 * first + 1)
            left, right = level[0::2], level[1::2]
            mixed = mix(f"binary{depth}", [left] + [ops[n].torch(left, right) for n in self.binary[1:]],
                        self.node_binary_logits[rows])
            level = mix(f"node_unary{depth}", [mixed] + [ops[n].torch(mixed) for n in self.unary[1:]],
                        self.node_unary_logits[rows])
            depth += 1
        return level[0], found


def _weights(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    if temperature <= 0:
        return nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / temperature, dim=-1)


def _rms(stacked: torch.Tensor) -> torch.Tensor:
    return stacked.detach().square().mean(-1, keepdim=True).sqrt().clamp_min(1e-12)


def _pick(stacked: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    rows = torch.arange(stacked.shape[0], device=stacked.device)
    return torch.clamp(stacked[rows, index], -CLAMP, CLAMP)


def _sampled(stacked, logits, temperature, generator) -> torch.Tensor:
    """Straight-through Gumbel-max: the drawn candidate's value, soft gradients to the logits."""
    uniform = torch.rand(logits.shape, generator=generator, device=generator.device).to(logits.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-10, 1 - 1e-10)))
    index = (logits.detach() / temperature + gumbel).argmax(-1)
    chosen = _pick(stacked, index)
    soft = torch.softmax(logits / temperature, dim=-1)
    scale = _rms(stacked)
    rows = torch.arange(stacked.shape[0], device=stacked.device)
    rescaled = stacked.detach() * (scale[rows, index].unsqueeze(1) / scale)
    surrogate = ((soft - soft.detach()).unsqueeze(-1) * rescaled).sum(dim=1)
    return chosen + surrogate
