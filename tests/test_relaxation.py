"""The relaxation expresses the classic rules exactly, and its mixtures never produce NaN/inf."""

import math

import pytest
import torch

from dsr_l2o import load_grammar, parse_formula
from dsr_l2o.search.discretize import argmax_choice, live_slots, set_choice, to_expr, top_k
from dsr_l2o.search.features import OperandTracker
from dsr_l2o.search.relaxation import RelaxedRule
from dsr_l2o.expr import to_text

GRAMMAR = load_grammar()
LION_GRAMMAR = load_grammar("""
operands:
  g: grad
  m: {ema: g, beta: 0.99}
unary: [sign, abs, exp]
binary: [add, mul, div]
constants: [1]
""")

# Depth-2 heap positions: nodes 0 (root), 1, 2; leaves 3, 4, 5, 6.
CLASSIC = {
    "g": (GRAMMAR, {("terminal", 3): "g"}, {}),
    "m": (GRAMMAR, {("terminal", 3): "m"}, {}),
    "sign(g)": (GRAMMAR, {("terminal", 3): "g", ("leaf_unary", 3): "sign"}, {}),
    "sign(m)": (GRAMMAR, {("terminal", 3): "m", ("leaf_unary", 3): "sign"}, {}),
    "m_hat / sqrt(v_hat)": (GRAMMAR, {("binary", 0): "div", ("terminal", 3): "m_hat",
                                      ("terminal", 5): "v_hat", ("leaf_unary", 5): "sqrt"}, {}),
    "g / sqrt(v)": (GRAMMAR, {("binary", 0): "div", ("terminal", 3): "g", ("terminal", 5): "v",
                              ("leaf_unary", 5): "sqrt"}, {}),
    "sign(m + 0.1 * g)": (LION_GRAMMAR, {("node_unary", 0): "sign", ("binary", 0): "add",
                                         ("terminal", 3): "m", ("terminal", 5): "g"}, {5: 0.1}),
    "exp(sign(g) * sign(m)) * g": (GRAMMAR, {
        ("binary", 0): "mul", ("node_unary", 1): "exp", ("binary", 1): "mul",
        ("terminal", 3): "g", ("leaf_unary", 3): "sign", ("terminal", 4): "m", ("leaf_unary", 4): "sign",
        ("terminal", 5): "g"}, {}),
    "g + sign(m) * abs(g)": (GRAMMAR, {  # AddSign: (1 + sign(g) sign(m)) g
        ("binary", 0): "add", ("binary", 2): "mul", ("terminal", 3): "g",
        ("terminal", 5): "m", ("leaf_unary", 5): "sign", ("terminal", 6): "g", ("leaf_unary", 6): "abs"}, {}),
}


def _rule_with(grammar, choice, scales):
    rule = RelaxedRule(grammar, depth=2)
    full = {(s.kind, s.index): {"node_unary": "identity", "binary": "left", "leaf_unary": "identity",
                                "terminal": rule.operand_names[0]}[s.kind] for s, _ in rule.slots()}
    full.update(choice)
    set_choice(rule, full)
    with torch.no_grad():
        for leaf, value in scales.items():
            rule.leaf_log_scale[leaf - rule.n_nodes] = math.log(value)
    return rule, full


def _operand_values(grammar, n=257, steps=5):
    tracker = OperandTracker(grammar, grammar.operands)
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(n, generator=gen)
    state = tracker.init(w)
    for t in range(1, steps + 1):
        g = torch.randn(n, generator=gen) * 10 ** torch.randint(-4, 2, (n,), generator=gen)
        state, values = tracker.step(state, g, w, t)
    return values


@pytest.mark.parametrize("formula", list(CLASSIC))
def test_one_hot_choice_reproduces_classic_rule(formula):
    grammar, choice, scales = CLASSIC[formula]
    rule, full = _rule_with(grammar, choice, scales)
    values = _operand_values(grammar)
    relaxed = rule(values, temperature=0.0)
    expected = parse_formula(formula, grammar).evaluate(values)
    torch.testing.assert_close(relaxed, expected, rtol=1e-6, atol=0.0)
    read_off = parse_formula(to_text(to_expr(rule, argmax_choice(rule))), grammar)
    torch.testing.assert_close(read_off.evaluate(values), expected, rtol=1e-5, atol=1e-12)


def test_dead_branches_are_not_live():
    rule, full = _rule_with(GRAMMAR, CLASSIC["sign(m)"][1], {})
    live = {index for _, index in live_slots(rule, full)}
    assert live == {0, 1, 3}


@pytest.mark.parametrize("temperature", [1.0, 0.3, 0.0])
def test_mixtures_stay_finite_for_extreme_inputs(temperature):
    rule = RelaxedRule(GRAMMAR, depth=3)
    with torch.no_grad():
        for p in rule.parameters():
            p.normal_(0, 2)
    n = 64
    extreme = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e30, -1e30, 3e38, -3e38] * (n // 8))
    values = {name: extreme[torch.randperm(n)] for name in rule.operand_names}
    out = rule(values, temperature, rule.measure_scales(values, temperature) if temperature else None)
    assert torch.isfinite(out).all()
    if temperature:
        loss = out.square().mean()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in rule.parameters() if p.grad is not None)


def test_top_k_returns_distinct_formulas_best_first():
    torch.manual_seed(3)
    rule = RelaxedRule(GRAMMAR, depth=2)
    with torch.no_grad():
        for _, logits in rule.slots():
            logits.normal_(0, 1)
    found = top_k(rule, 4)
    assert len({d.text for d in found}) == len(found) == 4
    assert found[0].text == to_text(to_expr(rule, argmax_choice(rule)))
