r"""A population gradient: discrete formulas sampled from the relaxation, scored as the protocol scores.

At every meta-step :class:`PopulationGradient` draws ``population`` formulas from the relaxation's
categorical choices (temperature :math:`T`), trains the episode's task with each of them at every
learning rate of ``population_lrs`` for the task's whole horizon, all as one batched run of the
engine (:func:`dsr_l2o.engine.train_formulas`), and gives each formula the reward

.. math:: R = -\min_{\eta} B\tanh\Big(\frac{1}{B}\log\frac{\bar L_{\text{last}}(\eta)}{L_0}\Big)

the bounded log of its best mean final loss (floored at the protocol's ``FLOOR``) over the
learning rates, which is what the fair protocol ranks (a diverged run counts as the bound). The score-function gradient of the
expected reward,

.. math:: \nabla \mathbb{E}[R] \approx \frac{1}{P}\sum_p (R_p - b_p)\,\nabla \log \pi(f_p),

uses a leave-one-out baseline :math:`b_p` (the mean of the other rewards of the same task), and,
with ``risk_quantile`` :math:`q > 0`, is risk-seeking as in Deep Symbolic Regression (Petersen et
al. 2021): only formulas at or above the population's :math:`q`-quantile contribute, against
that quantile. It never differentiates through a training run, so it holds no graph of the
unroll and does not prefer steepest descent; constants and scales come from the grammar.
Every formula scored is kept in a :class:`HallOfFame` (its mean advantage over the population it
was drawn with, over the tasks it met).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..evaluation.ratios import FLOOR
from ..formula import Formula
from .discretize import Choice, live_graph, to_expr
from .distributed import shared_map
from .estimators import Estimate, entropy
from .unroll import BOUND, Episode

PENALTY = BOUND
"""Bounded log loss of a formula that diverged at every learning rate (the worst there is)."""


def sample_choice(rule, temperature: float, generator: torch.Generator) -> Choice:
    """One discrete formula drawn from ``softmax(logits / T)`` of every slot (Gumbel-max)."""
    choice = {}
    for slot, logits in rule.slots():
        noise = torch.rand(logits.shape, generator=generator).clamp(1e-10, 1 - 1e-10)
        gumbel = -torch.log(-torch.log(noise))
        choice[(slot.kind, slot.index)] = slot.labels[int((logits.detach().cpu() / temperature + gumbel).argmax())]
    return choice


def log_prob(rule, choice: Choice, temperature: float) -> torch.Tensor:
    """``log pi(choice)`` over the slots the formula reads (differentiable in the logits)."""
    live = set(live_graph(rule, choice).nodes)
    total = []
    for slot, logits in rule.slots():
        if slot.index in live:
            logp = torch.log_softmax(logits / temperature, dim=-1)
            total.append(logp[slot.labels.index(choice[(slot.kind, slot.index)])])
    return torch.stack(total).sum()


SHRINK = 1.0
"""Pseudo-count of a zero advantage in :meth:`HallOfFame.best` (a formula met once counts half)."""


@dataclass
class HallOfFame:
    """Every formula scored during meta-training, with its *advantage* summed over the tasks it met:
    its reward minus the median reward of the population it was drawn with. Tasks differ in how
    much any rule can gain far more than rules differ on one task, so raw rewards would favour
    formulas that happened to meet easy tasks."""

    totals: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, text: str, advantage: float) -> None:
        self.totals[text] = self.totals.get(text, 0.0) + advantage
        self.counts[text] = self.counts.get(text, 0) + 1

    def best(self, k: int, min_count: int = 1) -> list[tuple[str, float, int]]:
        """The ``k`` formulas met at least ``min_count`` times with the highest mean advantage,
        shrunk towards 0 by :data:`SHRINK` pseudo-counts: ``total / (count + SHRINK)``."""
        rows = [(t, self.advantage(t), n) for t, n in self.counts.items() if n >= min_count]
        return sorted(rows, key=lambda r: (-r[1], len(r[0]), r[0]))[:k]

    def advantage(self, text: str) -> float | None:
        """The shrunk mean advantage of ``text`` (as in :meth:`best`), or None if never scored."""
        count = self.counts.get(text)
        return None if count is None else self.totals[text] / (count + SHRINK)

    @classmethod
    def from_state_dict(cls, data: dict) -> "HallOfFame":
        """The hall from :meth:`PopulationGradient.state_dict`'s tensors (empty if they are missing)."""
        hall = cls()
        texts = list(data.get("texts", []))
        totals, counts = data.get("totals"), data.get("counts")
        if texts and totals is not None and counts is not None:
            hall.totals = dict(zip(texts, (float(x) for x in totals)))
            hall.counts = dict(zip(texts, (int(x) for x in counts)))
        return hall

    def to_json(self) -> dict:
        return {"texts": list(self.totals), "totals": list(self.totals.values()),
                "counts": [self.counts[t] for t in self.totals]}


def advantages(rewards: np.ndarray, risk_quantile: float) -> np.ndarray:
    """Leave-one-out advantages, or risk-seeking ones against the ``risk_quantile`` quantile."""
    if len(rewards) < 2:
        return np.zeros_like(rewards)
    if risk_quantile > 0:
        cut = float(np.quantile(rewards, risk_quantile))
        return np.where(rewards >= cut, rewards - cut, 0.0)
    others = (rewards.sum() - rewards) / (len(rewards) - 1)
    return rewards - others


class PopulationGradient:
    """The score-function estimator of the module docstring (one task per meta-step)."""

    name = "population"
    truncations = 1
    """Each meta-step trains its task's whole horizon."""
    splits_itself = True
    """Distributed, every process samples the same formulas and scores its share (:mod:`.distributed`)."""

    def __init__(self, config, grammar):
        self.config, self.grammar = config, grammar
        self.lrs = tuple(float(lr) for lr in config.population_lrs)
        self.hall = HallOfFame()
        self.last: list[tuple[Choice, float]] = []
        """The last meta-step's samples and rewards."""

    def state_dict(self) -> dict:
        """The hall of fame as tensors and plain lists (checkpointed with the trainer)."""
        data = self.hall.to_json()
        return {"texts": data["texts"], "totals": torch.tensor(data["totals"], dtype=torch.float64),
                "counts": torch.tensor(data["counts"], dtype=torch.int64)}

    def load_state_dict(self, data: dict) -> None:
        self.hall = HallOfFame.from_state_dict(data)

    def rewards(self, formulas: list[Formula], episode: Episode) -> np.ndarray:
        """Each formula's reward on the episode's task (see the module docstring)."""
        from ..engine import train_formulas

        task = episode.task
        steps = int(getattr(task, "steps", self.config.horizon))
        members = [(k, lr) for k in range(len(formulas)) for lr in self.lrs]
        runs = train_formulas(formulas, task, members, [0], steps)
        window = max(1, math.ceil(0.1 * steps))
        scores = runs.scores(window)[0].reshape(len(formulas), len(self.lrs))
        with np.errstate(divide="ignore", invalid="ignore"):
            logs = np.log(np.maximum(scores, FLOOR)) - episode.log0
        bounded = np.where(np.isfinite(logs), BOUND * np.tanh(logs / BOUND), PENALTY)
        return -bounded.min(axis=1)

    def __call__(self, rule, episode: Episode, temperature: float, entropy_weight: float,
                 generator: torch.Generator) -> Estimate:
        choices = [sample_choice(rule, temperature, generator) for _ in range(self.config.population)]
        formulas = [Formula(to_expr(rule, c, unit_scales=True), self.grammar) for c in choices]
        texts = [f.text for f in formulas]
        unique = list(dict.fromkeys(texts))
        firsts = [formulas[texts.index(t)] for t in unique]
        scored = dict(zip(unique, shared_map(self.rewards, firsts, episode, device=episode.flat.device)))
        rewards = np.array([scored[t] if _reads_operands(f) else -PENALTY for t, f in zip(texts, formulas)])
        middle = float(np.median(rewards))
        for text in unique:
            self.hall.add(text, float(scored[text]) - middle)
        self.last = list(zip(choices, rewards.tolist()))
        log_probs = torch.stack([log_prob(rule, c, temperature) for c in choices])
        weights = torch.tensor(advantages(rewards, self.config.risk_quantile), dtype=log_probs.dtype,
                               device=log_probs.device)
        spread = entropy(rule, temperature)
        surrogate = -(weights * log_probs).mean()
        (surrogate - entropy_weight * spread).backward()
        finished = Episode(episode.task, episode.flat, episode.shapes, episode.buffers, self.config.horizon, episode.log0)
        return Estimate(float(-rewards.mean()), spread, False, finished)


def _reads_operands(formula: Formula) -> bool:
    return bool(formula.operands)
