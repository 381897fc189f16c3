"""Turn a relaxation's logits into formulas: argmax, dead-branch elimination, top-k alternatives.

The search space never changes here: this module only reads :meth:`RelaxedRule.slots`, the leaf
scales and the grammar. A discrete *choice* maps every slot ``(kind, index)`` to one label.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import torch

from .. import expr as ex
from .relaxation import IDENTITY, LEFT, RelaxedRule

Choice = dict[tuple[str, int], str]


@dataclass(frozen=True)
class Discretisation:
    """One discrete formula read off the relaxation, with its log-probability under the logits."""

    expr: ex.Expr
    choice: Choice
    log_prob: float

    @property
    def text(self) -> str:
        return ex.to_text(self.expr)


def _log_probs(rule: RelaxedRule) -> dict[tuple[str, int], dict[str, float]]:
    out = {}
    for slot, logits in rule.slots():
        logp = torch.log_softmax(logits.detach().float(), dim=-1).tolist()
        out[(slot.kind, slot.index)] = dict(zip(slot.labels, logp))
    return out


def argmax_choice(rule: RelaxedRule) -> Choice:
    """The most probable label of every slot."""
    return {key: max(labels, key=labels.get) for key, labels in _log_probs(rule).items()}


def live_graph(rule: RelaxedRule, choice: Choice) -> nx.DiGraph:
    """The tree positions the formula actually reads under ``choice`` (dead branches removed)."""
    graph = nx.DiGraph()
    graph.add_node(0)
    for i in range(rule.n_nodes):
        graph.add_edge(i, 2 * i + 1)
        if choice[("binary", i)] != LEFT:
            graph.add_edge(i, 2 * i + 2)
    return graph.subgraph(nx.descendants(graph, 0) | {0}).copy()


def live_slots(rule: RelaxedRule, choice: Choice) -> list[tuple[str, int]]:
    """Slots whose choice changes the formula under ``choice``."""
    live = set(live_graph(rule, choice).nodes)
    return [key for key in choice if key[1] in live]


def to_expr(rule: RelaxedRule, choice: Choice, scale_digits: int = 6, unit_scales: bool = False) -> ex.Expr:
    """The formula a choice selects, with the learned leaf scales as multipliers (all 1 with
    ``unit_scales``)."""
    scales = [1.0] * rule.n_leaves if unit_scales else rule.leaf_scales().detach().tolist()
    live = live_graph(rule, choice)

    def unary(label: str, arg: ex.Expr) -> ex.Expr:
        return arg if label == IDENTITY else ex.Call(label, (arg,))

    def build(i: int) -> ex.Expr:
        if i >= rule.n_nodes:
            return unary(choice[("leaf_unary", i)], leaf(i))
        left = build(2 * i + 1)
        op = choice[("binary", i)]
        body = left if op == LEFT else ex.Call(op, (left, build(2 * i + 2)))
        return unary(choice[("node_unary", i)], body)

    def leaf(i: int) -> ex.Expr:
        label = choice[("terminal", i)]
        scale = float(f"{scales[i - rule.n_nodes]:.{scale_digits}g}")
        if label in rule.grammar.operands:
            return ex.Var(label) if scale == 1.0 else ex.Call("mul", (ex.Num(scale), ex.Var(label)))
        return ex.Num(float(label) * scale)

    assert 0 in live
    return build(0)


def top_k(rule: RelaxedRule, k: int) -> list[Discretisation]:
    """The argmax formula and the most probable single-slot alternatives, best first, deduplicated."""
    logp = _log_probs(rule)
    best = argmax_choice(rule)

    def score(choice: Choice) -> float:
        live = set(live_graph(rule, choice).nodes)
        return sum(logp[key][label] for key, label in choice.items() if key[1] in live)

    choices = [best]
    for key in live_slots(rule, best):
        ranked = sorted(logp[key], key=logp[key].get, reverse=True)
        for label in ranked[1:3]:
            alt = dict(best)
            alt[key] = label
            choices.append(alt)
    seen, out = set(), []
    for choice in sorted(choices, key=score, reverse=True):
        expr = to_expr(rule, choice)
        text = ex.to_text(expr)
        if text in seen:
            continue
        seen.add(text)
        out.append(Discretisation(expr, choice, score(choice)))
    best_text = ex.to_text(to_expr(rule, best))
    out.sort(key=lambda d: (d.text != best_text, -d.log_prob))
    return out[:k]


def set_choice(rule: RelaxedRule, choice: Choice, strength: float = 50.0) -> None:
    """Make ``choice`` the argmax of every slot (one-hot logits); used by tests and refits."""
    with torch.no_grad():
        for slot, logits in rule.slots():
            label = choice.get((slot.kind, slot.index), slot.labels[0])
            logits.zero_()
            logits[slot.labels.index(label)] = strength
