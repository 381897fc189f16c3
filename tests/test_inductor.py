"""Inductor's C++ kernels of the fused step take the same steps as the eager step, in the library's
optimizer and in an exported one.

This is the suite's one test that builds kernels: every other fused-path test traces with dynamo's
``eager`` backend, which checks the whole graph without generating code. One test means one xdist
worker pays Inductor's start-up (about 12 s with an empty cache), and one formula covers what the
kernels must get right: a norm taken in float32 before the averages that read it, a parameter held
from before its update, debiased averages and elementwise functions.
"""

import copy

import torch

from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.optimizer import SymbolicOptimizer
from operand_paths import K_TILDE_OPERANDS, exported_module

GRAMMAR = """name: inductor
operands:
  g: grad
  w: param
""" + K_TILDE_OPERANDS + """  w_prev: {prev: w}
unary: [sign, sqrt, abs, exp]
binary: [add, sub, mul, div]
"""
FORMULA = "k_tilde + 0.1 * sign(g_prev) * sqrt(abs(w_prev)) + 0.1 * sign(g) * exp(-abs(w))"
SHAPES = [(5, 3), (7,), (2, 2)]
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


def test_inductor_kernels_step_like_eager_and_leave_state_the_eager_path_reads(tmp_path):
    formula = parse_formula(FORMULA, load_grammar(GRAMMAR))
    module = exported_module(formula, tmp_path / "inductor_export.py", LR)
    eager, _ = _run(lambda ps: SymbolicOptimizer(ps, formula, lr=LR, weight_decay=DECAY))
    makers = {"library": lambda ps, **kw: SymbolicOptimizer(ps, formula, **kw), "exported": module.DiscoveredOptimizer}
    for name, make in makers.items():
        fused, opt = _run(lambda ps: make(ps, lr=LR, weight_decay=DECAY, fused=True))
        assert not opt._fused_failed, name
        torch.testing.assert_close(_flat(fused), _flat(eager), rtol=1e-5, atol=1e-6, msg=name)

    # the exported fused step leaves state that its plain path continues from
    twin = [p.detach().clone().requires_grad_() for p in fused]
    plain = module.DiscoveredOptimizer(twin, lr=LR, weight_decay=DECAY)
    plain.load_state_dict(copy.deepcopy(opt.state_dict()))
    for optimizer, params in ((opt, fused), (plain, twin)):
        for p, g in zip(params, _gradients(STEPS)):
            p.grad = g
        optimizer.step()
    torch.testing.assert_close(_flat(twin), _flat(fused), rtol=1e-6, atol=1e-7)
    assert not opt._fused_failed
