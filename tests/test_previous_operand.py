"""``prev`` operands (a value at the previous step): one meaning on every backend."""

import pytest
import torch

from dsr_l2o.errors import GrammarError
from dsr_l2o.evaluation.protocol import EvalProtocol
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.naming import positive_scale
from dsr_l2o.notation import operand_latex, operand_text
from dsr_l2o.optimizer import SymbolicOptimizer
from dsr_l2o.search.features import OperandTracker
from dsr_l2o.tasks import get_task
from operand_paths import assert_engine_matches_sequential, exported_module, trace_with_eager_backend

GRAMMAR = """name: previous
operands:
  g: grad
  w: param
  g_prev: {prev: g}
  w_prev: {prev: w}
  d: {expr: "g - g_prev"}
  m: {ema: g, beta: 0.9}
  c_hat: {ema: "g + 0.5 * d", beta: 0.9, debias: true}
  u_hat: {ema: "(g + 0.5 * d)**2", beta: 0.99, debias: true}
  md_prev: {prev: "d * m"}
unary: [sign, sqrt, abs]
binary: [add, sub, mul, div]
"""
FORMULAS = ["c_hat / (sqrt(u_hat) + 1e-8)", "g_prev + 0.1 * w_prev + md_prev", "sign(g_prev) * sqrt(abs(w_prev))"]
LR, STEPS, DECAY = 0.05, 5, 0.1


@pytest.fixture(scope="module")
def grammar():
    return load_grammar(GRAMMAR)


def _gradients(shapes, step):
    gen = torch.Generator().manual_seed(100 + step)
    return [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]


def _start(shapes):
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]


def _run(make, shapes):
    params = [p.clone().requires_grad_() for p in _start(shapes)]
    opt = make(params)
    for step in range(STEPS):
        for p, g in zip(params, _gradients(shapes, step)):
            p.grad = g
        opt.step()
    return [p.detach() for p in params], opt


def _by_definition(formula, shapes):
    """The rule unrolled with the functional tracker of meta-training, on one flat vector."""
    tracker = OperandTracker(formula.grammar, formula.operands)
    w = torch.cat([p.flatten() for p in _start(shapes)])
    state = tracker.init(w)
    for step in range(STEPS):
        g = torch.cat([x.flatten() for x in _gradients(shapes, step)])
        w = w * (1 - LR * DECAY)
        state, values = tracker.step(state, g, w, step + 1)
        w = w - LR * formula.evaluate(values)
    return w


@pytest.mark.parametrize("text", FORMULAS)
def test_every_path_steps_alike(text, grammar, tmp_path, monkeypatch):
    trace_with_eager_backend(monkeypatch)
    formula = parse_formula(text, grammar)
    shapes = [(5, 3), (7,)]
    want = _by_definition(formula, shapes)
    module = exported_module(formula, tmp_path / "previous_export.py", LR)
    makers = [lambda ps, **kw: SymbolicOptimizer(ps, formula, lr=LR, weight_decay=DECAY, **kw),
              lambda ps, **kw: module.DiscoveredOptimizer(ps, lr=LR, weight_decay=DECAY, **kw)]
    for make in makers:
        for kw in ({"foreach": False}, {"foreach": True}, {"fused": True}):
            got, opt = _run(lambda ps: make(ps, **kw), shapes)
            torch.testing.assert_close(torch.cat([p.flatten() for p in got]), want, rtol=1e-10, atol=1e-12)
            assert not getattr(opt, "_fused_failed", False)


def test_the_held_value_is_the_previous_one_and_zero_at_first(grammar):
    p = torch.zeros(3, requires_grad=True)
    opt = SymbolicOptimizer([p], "g_prev", lr=1.0, grammar=grammar)
    seen = []
    for g in ([1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.0, 0.0, 1.0]):
        p.grad = torch.tensor(g)
        before = p.detach().clone()
        opt.step()
        seen.append((before - p.detach()).tolist())
    assert seen == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    assert opt.state_keys == ["g_prev"]
    p.grad.zero_()  # an in-place write to the gradient must not reach the held value
    twin = torch.zeros(3, requires_grad=True)
    copy = SymbolicOptimizer([twin], "g_prev", lr=1.0, grammar=grammar)
    copy.load_state_dict(opt.state_dict())
    twin.grad = torch.zeros(3)
    copy.step()
    assert twin.detach().tolist() == [-0.0, -0.0, -1.0]


def test_batched_engine_equals_sequential_trainer(grammar):
    assert_engine_matches_sequential(FORMULAS[:2], grammar, get_task("quadratic_illcond"), EvalProtocol(lrs=(1e-3, 1e-2, 1e-1), seeds=(0, 1), steps=15, extend_edges=1))


def test_definitions_are_written_and_named(grammar):
    ops = grammar.operands
    assert operand_text(ops["g_prev"]) == "g at the previous step (0 at the first)"
    assert operand_latex(grammar, ops["g_prev"]) == r"{g_{\mathrm{prev}}}_t = g_{t-1},\quad {g_{\mathrm{prev}}}_1 = 0"
    assert operand_latex(grammar, ops["md_prev"]).startswith(r"{md_{\mathrm{prev}}}_t = \left(d m\right)_{t-1}")
    assert ops["u_hat"].nonnegative and not ops["g_prev"].nonnegative
    assert positive_scale(parse_formula("2 * g_prev", grammar), parse_formula("g_prev", grammar)) == 2
    assert positive_scale(parse_formula("g_prev", grammar), parse_formula("g", grammar)) is None


@pytest.mark.parametrize("operands, message", [
    ("  g: grad\n  p: {prev: g, beta: 0.9}\n", "only applies to 'ema'"),
    ("  g: grad\n  p: {prev: g, expr: g}\n", "exactly one of 'ema'"),
    ("  g: grad\n  p: {prev: q}\n  q: {expr: 'g + p'}\n", "cycle"),
    ("  g: grad\n  p: {prev: 'g +'}\n", "operands.p.prev"),
])
def test_bad_prev_operands_get_one_line(operands, message):
    with pytest.raises(GrammarError, match=message) as err:
        load_grammar(f"name: bad\noperands:\n{operands}")
    assert "\n" not in str(err.value)


def test_the_corrected_grammar_clips_the_corrected_gradient():
    from dsr_l2o.layout import OperandLayout

    grammar = load_grammar("corrected")
    layout = OperandLayout(grammar, ["k_tilde"])
    assert layout.state_keys == ["k_hat", "ku_hat", "g_prev"]
    p = torch.zeros(3, requires_grad=True)
    opt = SymbolicOptimizer([p], "k_hat", lr=1.0, grammar=grammar)
    for g in ([10.0, 0.5, -0.2], [10.0, 0.5, 0.2]):
        p.grad = torch.tensor(g)
        opt.step()
    c = [10.0, 0.5, 0.2 + 0.225 * 0.4]  # g + 0.225 (g - g_prev) at the second step
    k1, k2 = torch.tensor([1.0, 0.5 * 1.225, -0.2 * 1.225]), torch.tensor([min(1.0, x) for x in c])
    k_hat = (0.9 * 0.1 * k1 + 0.1 * k2) / (1 - 0.9**2)
    torch.testing.assert_close(p.detach(), -(k1 + k_hat))
