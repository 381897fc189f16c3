"""The fused step (``SymbolicOptimizer(fused=True)``): same numbers as eager, fallback, state.

Most tests compile through dynamo with its ``eager`` backend (the whole graph is traced, no
breaks allowed, but no C++ is generated), so they take about a second each; test_inductor.py runs
the real Inductor backend.
"""

import copy
import warnings

import pytest
import torch

import dsr_l2o.lowering.fused as fused_module
from dsr_l2o.errors import ConfigError
from dsr_l2o.grammar import load_grammar
from dsr_l2o.optimizer import SymbolicOptimizer

FORMULAS = [
    "m_hat / (sqrt(v_hat) + 1e-8)",
    "m + 0.2 * sign(g) * abs(m)",
    "exp(g) / (w + 2)",
    "log(abs(g)) * sqrt(v) - 0.5 * w",
    "softsign(m_tilde) + square(g_tilde) / (1 + abs(w))",
]


@pytest.fixture
def dynamo_only(monkeypatch):
    monkeypatch.setattr(fused_module, "BACKEND", "eager")


def shapes():
    return [(5, 3), (7,), (1,)]


def run_steps(opt, params, steps, seed=0, start=0):
    for step in range(start, start + steps):
        gen = torch.Generator().manual_seed(seed + step)
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=p.dtype)
        opt.step()


def make(formula, dtype=torch.float64, transposed=False, **kw):
    gen = torch.Generator().manual_seed(1)
    params = [torch.randn(s, generator=gen, dtype=dtype).requires_grad_() for s in shapes()]
    if transposed:
        params.append(torch.randn(4, 6, generator=gen, dtype=dtype).t().requires_grad_())
    return params, SymbolicOptimizer(params, formula, lr=1e-2, weight_decay=0.1, **kw)


@pytest.mark.parametrize("formula", FORMULAS)
def test_fused_steps_equal_eager_steps(formula, dynamo_only):
    eager, eager_opt = make(formula, transposed=True)
    fast, fast_opt = make(formula, transposed=True, fused=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_steps(eager_opt, eager, 4)
        run_steps(fast_opt, fast, 4)
    assert not fast_opt._fused_failed
    for a, b in zip(eager, fast):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
    for p, q in zip(eager, fast):
        for key in eager_opt.state_keys:
            torch.testing.assert_close(fast_opt.state[q][key], eager_opt.state[p][key], rtol=1e-12, atol=1e-14)


def test_step_operand_and_a_debiased_average_of_an_expression(dynamo_only):
    grammar = load_grammar("name: steps\noperands:\n  g: grad\n  w: param\n  t: step\n"
                           "  q: {ema: 'abs(g) * w', beta: 0.8, debias: true}\n")
    formula = "q / sqrt(t) + exp(-t) * sign(g)"
    eager, eager_opt = make(formula, grammar=grammar)
    fast, fast_opt = make(formula, grammar=grammar, fused=True)
    run_steps(eager_opt, eager, 4)
    run_steps(fast_opt, fast, 4)
    assert not fast_opt._fused_failed
    for a, b in zip(eager, fast):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_a_failing_compiler_warns_once_and_runs_eager(monkeypatch):
    def broken_backend(graph, example_inputs):
        raise RuntimeError("no C++ compiler on this machine")

    monkeypatch.setattr(fused_module, "BACKEND", broken_backend)
    eager, eager_opt = make(FORMULAS[0])
    fast, fast_opt = make(FORMULAS[0], fused=True)
    with pytest.warns(RuntimeWarning, match="compilation failed"):
        run_steps(fast_opt, fast, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_steps(fast_opt, fast, 2, start=1)
    run_steps(eager_opt, eager, 3)
    assert fast_opt._fused_failed
    for a, b in zip(eager, fast):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_state_dict_round_trips_between_paths(dynamo_only):
    formula = FORMULAS[0]
    whole, whole_opt = make(formula)
    run_steps(whole_opt, whole, 5)
    first, first_opt = make(formula, fused=True)
    run_steps(first_opt, first, 3)
    saved = first_opt.state_dict()
    assert all(group["fused"] for group in saved["param_groups"])
    for fused in (False, True):
        params = [p.detach().clone().requires_grad_() for p in first]
        resumed = SymbolicOptimizer(params, formula, lr=1e-2, weight_decay=0.1, fused=fused)
        resumed.load_state_dict(copy.deepcopy(saved))
        run_steps(resumed, params, 2, start=3)
        for a, b in zip(whole, params):
            torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_scheduled_lr_does_not_recompile(dynamo_only):
    params, opt = make(FORMULAS[1], fused=True)
    scheduler = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    twin, twin_opt = make(FORMULAS[1])
    twin_scheduler = torch.optim.lr_scheduler.StepLR(twin_opt, step_size=1, gamma=0.5)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    for step in range(3):
        run_steps(opt, params, 1, start=step)
        run_steps(twin_opt, twin, 1, start=step)
        scheduler.step()
        twin_scheduler.step()
    frames = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    assert frames == 1, frames
    for a, b in zip(twin, params):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_fused_arguments_are_checked():
    with pytest.raises(ConfigError, match="exclude each other"):
        SymbolicOptimizer([torch.zeros(2, requires_grad=True)], "g", fused=True, foreach=True)
    with pytest.raises(ConfigError, match="fused must be True or False"):
        SymbolicOptimizer([torch.zeros(2, requires_grad=True)], "g", fused="yes")


def _many(formula, n, **kw):
    """``n`` tensors: one-element ones (dynamo traces them apart), and a first chunk (of 3) where a
    size equals the scalar tensor's (3 entries) that the second chunk does not repeat."""
    gen = torch.Generator().manual_seed(2)
    sizes = ([3, 5, 1, 6, 7, 5, 9, 1] * n)[:n]
    params = [torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for s in sizes]
    return params, SymbolicOptimizer(params, formula, lr=1e-2, weight_decay=0.1, **kw)


def test_many_tensors_compile_two_kernels_of_a_chunk_at_most(monkeypatch):
    traced = []

    def counting(graph, example_inputs):  # dynamo's trace, run as traced (no C++)
        traced.append(sum(isinstance(x, torch.Tensor) and x.dim() == 1 for x in example_inputs))
        return graph.forward

    monkeypatch.setattr(fused_module, "BACKEND", counting)
    monkeypatch.setattr(fused_module, "CHUNK", 3)  # small chunks keep the traces short
    n = 2 * fused_module.CHUNK + 2
    eager, eager_opt = _many(FORMULAS[1], n)
    fast, fast_opt = _many(FORMULAS[1], n, fused=True)
    run_steps(eager_opt, eager, 3)
    run_steps(fast_opt, fast, 3)
    # one kernel for the chunks of CHUNK tensors, one for the one-element tensors, run last together
    assert not fast_opt._fused_failed and len(traced) == 2, traced
    for a, b in zip(eager, fast):
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)


def test_a_chunk_that_fails_to_compile_leaves_the_done_ones_alone(monkeypatch):
    calls = []

    def fails_the_second_time(graph, example_inputs):
        calls.append(1)
        if len(calls) > 1:
            raise RuntimeError("out of memory in the C++ compiler")
        return graph.forward

    monkeypatch.setattr(fused_module, "BACKEND", fails_the_second_time)
    monkeypatch.setattr(fused_module, "CHUNK", 3)
    n = fused_module.CHUNK + 2
    eager, eager_opt = _many(FORMULAS[0], n)
    fast, fast_opt = _many(FORMULAS[0], n, fused=True)
    with pytest.warns(RuntimeWarning, match="compilation failed"):
        run_steps(fast_opt, fast, 1)
    run_steps(fast_opt, fast, 2, start=1)
    run_steps(eager_opt, eager, 3)
    assert fast_opt._fused_failed
    for a, b in zip(eager, fast):  # the first chunk was stepped once, not twice
        torch.testing.assert_close(b, a, rtol=1e-12, atol=1e-14)
