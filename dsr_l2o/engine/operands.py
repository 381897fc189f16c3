"""A grammar's operands for a batch of formula runs, each computed where it is needed.

Moving averages with the same definition share one buffer (``m`` and its debiased ``m_hat`` are
one EMA, as in :class:`~dsr_l2o.optimizer.SymbolicOptimizer`) and are updated on the whole
stacked tensor before anything reads them. Stateless ``expr`` operands that no EMA reads are
evaluated per formula, on that formula's slice only.
"""

from __future__ import annotations

from typing import Iterable

import torch

from ..grammar import Grammar


class BatchOperands:
    """Operand values of ``grammar`` for stacked parameters ``[S, R, N]``, step by step."""

    def __init__(self, grammar: Grammar, names: Iterable[str]):
        self.grammar = grammar
        ops = grammar.operands
        self.order = grammar.dependencies(names)
        emas = [n for n in self.order if ops[n].kind == "ema"]
        self.key = {n: (repr(ops[n].source), ops[n].beta) for n in emas}
        self.buffers = list(dict.fromkeys(self.key.values()))
        self.sources = {key: next(ops[n].source for n in emas if self.key[n] == key) for key in self.buffers}
        full = set(emas)
        for n in emas:
            full.update(grammar.dependencies(_variables(ops[n].source)))
        self.full = [n for n in self.order if n in full]

    def init(self, like: torch.Tensor) -> dict:
        """Zero EMA buffers shaped like ``like``."""
        return {key: torch.zeros_like(like) for key in self.buffers}

    def step(self, state: dict, grads: torch.Tensor, params: torch.Tensor, t: int) -> tuple[dict, dict]:
        """Advance the EMAs to step ``t`` (from 1); returns the new state and the full-size values."""
        ops = self.grammar.operands
        values: dict[str, torch.Tensor] = {}
        new_state = dict(state)
        done = set()
        for name in self.full:
            op = ops[name]
            if op.kind in ("grad", "param", "step", "expr"):
                values[name] = self._plain(name, values, grads, params, t)
                continue
            key = self.key[name]
            if key not in done:
                source = self._source(op.source, values, grads)
                new_state[key] = op.beta * state[key] + (1.0 - op.beta) * source
                done.add(key)
            raw = new_state[key]
            values[name] = raw * (1.0 / (1.0 - op.beta**t)) if op.debias else raw
        return new_state, values

    def for_slice(self, names: Iterable[str], values: dict, part: slice, grads: torch.Tensor,
                  params: torch.Tensor, t: int) -> dict[str, torch.Tensor]:
        """The operands ``names`` (and what they need) on the member slice ``part``."""
        env = {n: v[:, part] for n, v in values.items()}
        g, w = grads[:, part], params[:, part]
        for name in self.grammar.dependencies(names):
            if name not in env:
                env[name] = self._plain(name, env, g, w, t)
        return {n: env[n] for n in names}

    def _plain(self, name, values, grads, params, t):
        op = self.grammar.operands[name]
        if op.kind == "grad":
            return grads
        if op.kind == "param":
            return params
        if op.kind == "step":
            return torch.full_like(grads, float(t))
        return self._source(op.source, values, grads)

    def _source(self, source, values, like):
        out = self.grammar.evaluate(source, values)
        return out if isinstance(out, torch.Tensor) else torch.full_like(like, float(out))


def _variables(node) -> set[str]:
    from ..expr import variables

    return variables(node)
