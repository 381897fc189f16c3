"""``norm`` operands (a Euclidean norm per parameter tensor): one meaning on every backend."""

import warnings

import pytest
import torch

from dsr_l2o.errors import GrammarError
from dsr_l2o.evaluation.protocol import EvalProtocol
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.naming import positive_scale, recorded_operands, same_rule_key
from dsr_l2o.notation import operand_latex, operand_text
from dsr_l2o.optimizer import SymbolicOptimizer
from dsr_l2o.search.features import OperandTracker, tensor_norms
from dsr_l2o.tasks import get_task
from operand_paths import K_TILDE_OPERANDS, assert_engine_matches_sequential, exported_module, trace_with_eager_backend

GRAMMAR = """name: tensor_norms
operands:
  g: grad
  w: param
""" + K_TILDE_OPERANDS + """  w_norm: {norm: w}
  two: {norm: 2}
  m: {ema: g, beta: 0.9}
  m_norm: {norm: m}
  gm: {ema: "g * m_norm", beta: 0.5}
unary: [sign, sqrt, abs]
binary: [add, sub, mul, div]
"""
FORMULAS = ["k_tilde", "g * w_norm / (c_norm + 0.001)", "sign(g) * c_norm + 0.01 * two * w", "gm / (m_norm + 1)"]
LR, STEPS, DECAY = 0.05, 5, 0.1
SHAPES = [(5, 3), (7,)]


@pytest.fixture(scope="module")
def grammar():
    return load_grammar(GRAMMAR)


def _gradients(step):
    gen = torch.Generator().manual_seed(100 + step)
    return [3 * torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]


def _start():
    gen = torch.Generator().manual_seed(1)
    return [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]


def _run(make):
    params = [p.clone().requires_grad_() for p in _start()]
    opt = make(params)
    for step in range(STEPS):
        for p, g in zip(params, _gradients(step)):
            p.grad = g
        opt.step()
    return torch.cat([p.detach().flatten() for p in params]), opt


def _by_definition(formula, segments):
    """The rule unrolled with the functional tracker of meta-training, on one flat vector."""
    tracker = OperandTracker(formula.grammar, formula.operands)
    w = torch.cat([p.flatten() for p in _start()])
    state = tracker.init(w)
    for step in range(STEPS):
        g = torch.cat([x.flatten() for x in _gradients(step)])
        w = w * (1 - LR * DECAY)
        state, values = tracker.step(state, g, w, step + 1, segments)
        w = w - LR * formula.evaluate(values)
    return w


def test_a_norm_is_taken_over_each_tensor_and_read_at_each_of_its_coordinates():
    x = torch.tensor([[3.0, 4.0, 1.0, 0.0, 0.0], [0.0, 0.0, 2.0, 2.0, 1.0]])
    assert tensor_norms(x, [2, 3]).tolist() == [[5.0, 5.0, 1.0, 1.0, 1.0], [0.0, 0.0, 3.0, 3.0, 3.0]]
    assert tensor_norms(x[0]).tolist() == pytest.approx([26.0**0.5] * 5)
    with pytest.raises(ValueError, match="do not add up"):
        tensor_norms(x, [2, 2])


@pytest.mark.parametrize("text", FORMULAS)
def test_every_path_steps_alike(text, grammar, tmp_path, monkeypatch):
    trace_with_eager_backend(monkeypatch)
    formula = parse_formula(text, grammar)
    want = _by_definition(formula, [torch.Size(s).numel() for s in SHAPES])
    assert not torch.allclose(want, _by_definition(formula, None))  # the tensors' boundaries matter
    module = exported_module(formula, tmp_path / "norm_export.py", LR)
    makers = [lambda ps, **kw: SymbolicOptimizer(ps, formula, lr=LR, weight_decay=DECAY, **kw),
              lambda ps, **kw: module.DiscoveredOptimizer(ps, lr=LR, weight_decay=DECAY, **kw)]
    for make in makers:
        for kw in ({"foreach": False}, {"foreach": True}, {"fused": True}):
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)  # no path falls back
                got, opt = _run(lambda ps: make(ps, **kw))
            torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
            assert not opt._fused_failed  # the compiled step takes norms itself
    assert SymbolicOptimizer(_start(), formula).program.lowered  # not the reference evaluator


def test_norms_come_between_the_moving_averages_that_read_and_feed_them(grammar):
    program = SymbolicOptimizer(_start(), parse_formula("k_tilde + 0.1 * w_norm + gm", grammar)).program
    positions = {name: position for name, position, _ in program.norm_sources}
    updates = [key for key, _, _ in program.ema_sources]
    assert positions["c_norm"] <= updates.index("k_hat")  # k's averages read it
    assert updates.index("m") < positions["m_norm"] <= updates.index("gm")  # it reads m; gm reads it


def test_batched_engine_equals_sequential_trainer(grammar):
    assert_engine_matches_sequential(FORMULAS[:2], grammar, get_task("mlp_digits_relu"), EvalProtocol(lrs=(1e-2, 1e-1), seeds=(0,), steps=8, extend_edges=1))


def test_definitions_are_written_named_and_probed(grammar):
    ops = grammar.operands
    assert operand_text(ops["c_norm"]) == "Euclidean norm of c over each parameter tensor"
    assert operand_latex(grammar, ops["w_norm"]).startswith(r"{w_{\mathrm{norm}}} = \left\lVert w \right\rVert_2")
    assert ops["c_norm"].nonnegative and ops["two"].nonnegative
    k = parse_formula("k_tilde", grammar)
    assert positive_scale(parse_formula("3 * k_tilde", grammar), k) == 3
    assert positive_scale(parse_formula("g * w_norm", grammar), parse_formula("g", grammar)) is None
    assert same_rule_key(parse_formula("g * w_norm", grammar)) != same_rule_key(parse_formula("g * c_norm", grammar))
    runs = recorded_operands(grammar)
    assert all(run["w_norm"].shape == run["g"].shape for run in runs)
    assert float(runs[-1]["w_norm"].min()) < float(runs[-1]["w_norm"].max())  # several tensors, several norms


@pytest.mark.parametrize("operands, message", [
    ("  g: grad\n  n: {norm: g, beta: 0.9}\n", "only applies to 'ema'"),
    ("  g: grad\n  n: {norm: g, expr: g}\n", "exactly one of 'ema'"),
    ("  g: grad\n  n: {norm: 'g +'}\n", "operands.n.norm"),
])
def test_bad_norm_operands_get_one_line(operands, message):
    with pytest.raises(GrammarError, match=message) as err:
        load_grammar(f"name: bad\noperands:\n{operands}")
    assert "\n" not in str(err.value)


def test_recorded_and_probed_norms_are_per_tensor(grammar):
    from dsr_l2o.distill.record import record
    from dsr_l2o.evaluation.baselines import get_baseline
    from dsr_l2o.search.guards import probe_operands
    from dsr_l2o.tasks import get_family

    formula = parse_formula("k_tilde", grammar)
    teacher = get_baseline("sgd").__class__("mars_step", lambda p, lr: SymbolicOptimizer(p, formula, lr=lr))
    trace = record(teacher, get_family("mlp_digits"), grammar, ["k_tilde", "c_norm"], episodes=1, steps=6, coords=512)
    torch.testing.assert_close(trace.operands["k_tilde"], trace.direction, rtol=1e-9, atol=1e-12)
    assert len(set(trace.operands["c_norm"].tolist())) > 6  # several tensors at each of six steps
    probes = probe_operands(formula, [get_task("mlp_digits_relu")], steps=3)
    assert all(len(set(p["c_norm"].tolist())) > 1 for p in probes)
