r"""Gradient estimators: from one truncation's losses to a gradient on the relaxation's parameters.

An estimator is called once per meta-step with the relaxation, the current episode and the
meta-step's temperature and entropy weight; it fills the ``.grad`` of the rule's parameters and
returns a :class:`Estimate`. The outer loop (:mod:`dsr_l2o.search.meta_train`) clips and applies
it. :class:`TruncatedBackprop` is truncated back-propagation through the unroll (Andrychowicz et
al. 2016): the meta-loss

.. math:: \frac{1}{K}\sum_{k=1}^{K} B \tanh\Big(\frac{\log L(w_{s+k}) - \log L(w_0)}{B}\Big) + \lambda\,\bar H

(mean bounded relative log loss plus the mean entropy of the mixtures, weighted by ``lambda``)
is back-propagated through the inner steps; with the ``sampled`` relaxation the choices get the
straight-through gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .unroll import Episode, unroll


@dataclass
class Estimate:
    """One meta-step's estimate: the meta-loss (``None`` when nothing finite was seen), the entropy,
    whether the inner run diverged, and the episode to continue from."""

    meta_loss: float | None
    entropy: torch.Tensor
    diverged: bool
    episode: Episode
    reason: str | None = None


def entropy(rule, temperature: float) -> torch.Tensor:
    """Mean entropy of the relaxation's categorical choices at ``temperature``."""
    total = []
    for _, logits in rule.slots():
        logp = torch.log_softmax(logits / max(temperature, 1e-3), dim=-1)
        total.append(-(logp.exp() * logp).sum())
    return torch.stack(total).mean() if total else torch.zeros(())


class TruncatedBackprop:
    """Pathwise (straight-through) gradient of the truncation's mean bounded log loss."""

    name = "truncated_backprop"

    def __init__(self, config, tracker):
        self.config, self.tracker = config, tracker

    def __call__(self, rule, episode: Episode, temperature: float, entropy_weight: float,
                 generator: torch.Generator) -> Estimate:
        truncation = unroll(rule, episode, self.tracker, self.config, temperature, generator)
        spread = entropy(rule, temperature)
        if not truncation.logs:
            return Estimate(None, spread, truncation.diverged, truncation.episode, "inner loss not finite")
        meta_loss = torch.stack(truncation.logs).mean()
        objective = meta_loss + entropy_weight * spread
        objective.backward()
        reason = None if torch.isfinite(objective) else "meta-gradient not finite"
        return Estimate(float(meta_loss.detach()), spread, truncation.diverged, truncation.episode, reason)
