"""A descent prior for the leaves: terminals that point along the gradient start more likely.

Each terminal's initial logit is ``strength`` times its mean cosine with the gradient along short
real training trajectories of tasks from the training family. Nothing here reads operand names:
the prior is measured, so it holds for any grammar.
"""

from __future__ import annotations

import torch

from ..layout import gradient_names
from .meta_train import episode_seed
from .relaxation import RelaxedRule


def terminal_cosines(rule: RelaxedRule, family, seed: int, tasks: int = 4, steps: int = 20) -> list[float]:
    """Mean cosine of each terminal with the gradient (constants: of a constant vector)."""
    from .guards import probe_operands
    from ..formula import Formula
    from ..expr import Var

    grammar = rule.grammar
    grad_name = gradient_names(grammar)[0]
    sampled = [family.sample(episode_seed(seed, -1 - i)) for i in range(tasks)]
    probes = probe_operands(Formula(Var(grad_name), grammar), sampled, steps=steps)
    totals = [0.0] * len(rule.terminals)
    for values in probes:
        g = values[grad_name]
        for j, name in enumerate(rule.terminals):
            x = values[name] if name in values else torch.full_like(g, float(name))
            denom = float(x.norm() * g.norm())
            totals[j] += float(x @ g) / denom if denom > 0 else 0.0
    return [t / max(len(probes), 1) for t in totals]


def apply_descent_prior(rule: RelaxedRule, cosines: list[float], strength: float) -> None:
    """Set every leaf's terminal logits to ``strength * cosine``."""
    with torch.no_grad():
        rule.leaf_logits.copy_(strength * torch.tensor(cosines).expand_as(rule.leaf_logits))
