"""Inductor's C++ kernel of the library's fused step takes the same steps as the eager step; the
exported optimizer's fused step, made of the same operations, traces whole and leaves state its
plain path reads.

This is the suite's one test that builds a kernel: every other fused-path test traces with dynamo's
``eager`` backend, which checks the whole graph without generating code. With an empty cache a
process's first kernel takes about 17 s (Inductor's start-up and the C++ build) and each later one
about 9 s, so one kernel is built, by one xdist worker. One formula covers what the kernel must get
right: a norm taken in float32 before the averages that read it, a parameter held from before its
update, debiased averages and elementwise functions. ``benchmarks/step_time.py`` builds the
exported optimizer's kernels too.
"""

import copy

import torch

from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.optimizer import SymbolicOptimizer
from operand_paths import K_TILDE_OPERANDS, exported_module, trace_with_eager_backend

GRAMMAR = """name: inductor
operands:
  g: grad
  w: param
""" + K_TILDE_OPERANDS + """  w_prev: {prev: w}
unary: [sign, sqrt, abs, exp]
binary: [add, sub, mul, div]
"""
FORMULA = "k_tilde + 0.1 * sign(g_prev) * sqrt(abs(w_prev)) + 0.1 * sign(g) * exp(-abs(w))"
SHAPES = [(5, 3), (7,)]  # two tensors show per-tensor norms; each more lengthens the traced graph
LR, DECAY, STEPS = 0.05, 0.1, 3


def _gradients(step):
    gen = torch.Generator().manual_seed(100 + step)
    return [3 * torch.randn(s, generator=gen) for s in SHAPES]


def _run(make):
    gen = torch.Generator().manual_seed(1)
    params = [torch.randn(s, generator=gen).requires_grad_() for s in SHAPES]
    opt = make(params)
    for step in range(STEPS):
        for p, g in zip(params, _gradients(step)):
            p.grad = g
        opt.step()
    return params, opt


def _flat(params):
    return torch.cat([p.detach().flatten() for p in params])


def test_inductor_kernels_step_like_eager_and_leave_state_the_eager_path_reads(tmp_path, monkeypatch):
    import torch._inductor.config  # here, not at collection: it imports Inductor (2 s)

    # trust the CPU's listed vector extensions instead of compiling a probe for each (4 s cold)
    monkeypatch.setattr(torch._inductor.config.cpp, "vec_isa_ok", True)
    formula = parse_formula(FORMULA, load_grammar(GRAMMAR))
    module = exported_module(formula, tmp_path / "inductor_export.py", LR)
    eager, _ = _run(lambda ps: SymbolicOptimizer(ps, formula, lr=LR, weight_decay=DECAY))
    fused, opt = _run(lambda ps: SymbolicOptimizer(ps, formula, lr=LR, weight_decay=DECAY, fused=True))
    assert not opt._fused_failed
    torch.testing.assert_close(_flat(fused), _flat(eager), rtol=1e-5, atol=1e-6)

    # the exported step is made of the same operations: its trace is checked, not built again
    trace_with_eager_backend(monkeypatch)
    exported, opt = _run(lambda ps: module.DiscoveredOptimizer(ps, lr=LR, weight_decay=DECAY, fused=True))
    assert not opt._fused_failed
    torch.testing.assert_close(_flat(exported), _flat(eager), rtol=1e-5, atol=1e-6)

    # the exported fused step leaves state that its plain path continues from
    twin = [p.detach().clone().requires_grad_() for p in exported]
    plain = module.DiscoveredOptimizer(twin, lr=LR, weight_decay=DECAY)
    plain.load_state_dict(copy.deepcopy(opt.state_dict()))
    for optimizer, params in ((opt, exported), (plain, twin)):
        for p, g in zip(params, _gradients(STEPS)):
            p.grad = g
        optimizer.step()
    torch.testing.assert_close(_flat(twin), _flat(exported), rtol=1e-6, atol=1e-7)
    assert not opt._fused_failed
