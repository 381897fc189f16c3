"""Regression inputs of issue 15 for grammar files: one-line errors at load time, never later."""

import time
import types

import pytest
import torch

from dsr_l2o.errors import GrammarError
from dsr_l2o.export.torch_source import torch_source
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar


def _load_error(text: str) -> str:
    start = time.perf_counter()
    with pytest.raises(GrammarError) as info:
        load_grammar(text)
    assert time.perf_counter() - start < 2.0
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message
    return message


def test_huge_integer_constant():
    assert "constants.0: number 999" in _load_error("operands: {g: grad}\nconstants: [" + "9" * 4301 + "]\n")


def test_huge_hex_constant():
    assert "longer than 100 characters" in _load_error("operands: {g: grad}\nconstants: [0x" + "f" * 4000 + "]\n")


def test_huge_number_as_expr():
    assert "operands.k.expr" in _load_error("operands:\n  g: grad\n  k: {expr: " + "9" * 400 + "}\n")


def test_constant_larger_than_the_limit():
    assert "constants.1" in _load_error("operands: {g: grad}\nconstants: [1, 1e200]\n")


def test_self_nesting_custom_operators_fail_grammar_check():
    text = "operands: {g: grad}\noperators:\n  sx0: {args: [x], expr: 'x / (1 + abs(x))'}\n" + "".join(
        f"  sx{i}: {{args: [x], expr: 'sx{i - 1}(sx{i - 1}(x))'}}\n" for i in range(1, 5))
    assert ":7: operators.sx4.expr: formula has" in _load_error(text)


def test_doubling_custom_operators_fail_grammar_check():
    text = "operands: {g: grad}\noperators:\n  tx0: {args: [x], expr: 'x'}\n" + "".join(
        f"  tx{i}: {{args: [x], expr: 'tx{i - 1}(x) + tx{i - 1}(x)'}}\n" for i in range(1, 30))
    assert "nodes once custom operators expand" in _load_error(text)


def test_shallow_custom_operators_still_load():
    text = "operands: {g: grad}\noperators:\n  tx0: {args: [x], expr: 'x'}\n" + "".join(
        f"  tx{i}: {{args: [x], expr: 'tx{i - 1}(x) + tx{i - 1}(x)'}}\n" for i in range(1, 6))
    grammar = load_grammar(text)
    assert parse_formula("tx5(g)", grammar).evaluate({"g": torch.ones(2)}).tolist() == [32.0, 32.0]


def test_operands_named_like_builtins_export_a_working_optimizer():
    grammar = load_grammar("operands: {float: grad, int: {ema: float, beta: 0.9}, "
                           "len: {ema: 'float**2', beta: 0.99}}\n")
    source = torch_source(parse_formula("int / (sqrt(len) + 1e-8) + sign(float)", grammar), lr=0.1)
    module = types.ModuleType("exported")
    exec(compile(source, "exported.py", "exec"), module.__dict__)  # our own generated code
    w = torch.nn.Parameter(torch.zeros(3))
    opt = module.DiscoveredOptimizer([w], lr=0.1)
    for _ in range(2):
        w.grad = torch.ones(3)
        opt.step()
    assert torch.all(w < 0)


@pytest.mark.parametrize("text, where", [
    ("operands: {g: grad}\nconstants: [0x" + "f" * 90 + "g]\n", "constants.0"),
    ("operands: {g: " + "y" * 3000 + "}\n", "operands.g: unknown built-in"),
    ("operands: {g: grad}\nunary: [" + "z" * 3000 + "]\n", "unary.0: unknown operator"),
])
def test_long_rejected_values_are_shortened(text, where):
    message = _load_error(text)
    assert where in message and "characters)" in message
