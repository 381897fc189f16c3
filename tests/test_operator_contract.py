"""Every operator of the registry through every backend: they must agree.

Backends: the tensor function, the scalar function, the sympy form (numerically), the compiled
program of SymbolicOptimizer (it must be lowered, not the fallback), its fused step (built, and
traced whole by dynamo), the exported standalone optimizer, the simplifier's round trip, LaTeX and
the docs table. A new registry entry gets a
row here automatically.
"""

import importlib.util
import itertools

import numpy as np
import pytest
import sympy as sp
import torch

from dsr_l2o.docs_gen import operator_table
from dsr_l2o.export.torch_source import torch_source
from dsr_l2o.expr import to_text
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.lowering import TensorOps, compile_formula
import dsr_l2o.lowering.fused as fused_module
from dsr_l2o.lowering.fused import FusedStep
from dsr_l2o.notation import print_latex
from dsr_l2o.operators import BUILTIN_OPERATORS, FORMS, REGISTRY, Builtin, build, form_latex
from dsr_l2o.primitives import MATH
from dsr_l2o.safe_sympy import expand_guards
from dsr_l2o.simplify import from_sympy, same_values, simplify

GRAMMAR = load_grammar("name: contract\noperands:\n  g: grad\n  w: param\n")
NAMES = [entry.name for entry in REGISTRY]
VALUES = [0.0, 1e-13, -1e-13, 1e-3, -0.7, 1.0, -1.0, 2.5, -3.0, 19.99, 20.01, 30.0, -30.0, 1e4]


def values(arity):
    pairs = list(itertools.product(VALUES, repeat=arity))
    columns = list(zip(*pairs))
    return [torch.tensor(c, dtype=torch.float64) for c in columns]


def formula(name):
    op = BUILTIN_OPERATORS[name]
    return parse_formula(f"{name}(g)" if op.arity == 1 else f"{name}(g, w)", GRAMMAR)


@pytest.mark.parametrize("name", NAMES)
def test_scalar_and_sympy_agree_with_torch(name):
    entry = next(e for e in REGISTRY if e.name == name)
    op = BUILTIN_OPERATORS[name]
    args = values(op.arity)
    want = op.torch(*args)
    scalar = torch.tensor([float(entry.kernel(MATH, *row)) for row in zip(*(a.tolist() for a in args))],
                          dtype=torch.float64)
    torch.testing.assert_close(scalar, want, rtol=1e-12, atol=0)
    symbols = sp.symbols("x y", real=True)[: op.arity]
    numeric = sp.lambdify(symbols, expand_guards(op.sympy(*symbols)), "numpy")
    with np.errstate(all="ignore"):
        got = np.broadcast_to(numeric(*(a.numpy() for a in args)), want.shape)
    assert np.allclose(got, want.numpy(), rtol=1e-12, atol=0), name
    batched = torch.func.vmap(op.torch)(*(a.view(-1, 2) if a.numel() % 2 == 0 else a.view(-1, 1) for a in args))
    torch.testing.assert_close(batched.reshape(-1), want)


@pytest.mark.parametrize("foreach", [True, False])
@pytest.mark.parametrize("name", NAMES)
def test_compiled_program_is_lowered_and_agrees(name, foreach):
    f = formula(name)
    program = compile_formula(f)
    assert program.lowered, f"{name} falls back to the reference evaluator"
    g, w = values(2)
    got = program.direction(TensorOps(foreach), [w.clone()], [g.clone()], {}, 1)[0]
    want = f.evaluate({"g": g, "w": w})
    torch.testing.assert_close(got, want.expand_as(got), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_fused_step_is_built_traces_whole_and_agrees(name, monkeypatch):
    monkeypatch.setattr(fused_module, "BACKEND", "eager")  # dynamo traces the whole step; no C++ compile
    f = formula(name)
    fused = FusedStep(compile_formula(f))
    g, w = values(2)
    scalars = fused.scalars(1, 0.1, 0.0, w)
    want = w - 0.1 * f.evaluate({"g": g, "w": w})
    eager = [w.clone()]
    fused.run(eager, [g.clone()], [], scalars, False)
    torch.testing.assert_close(eager[0], want, rtol=1e-12, atol=1e-12)
    traced = [w.clone()]
    fused.compiled()(traced, [g.clone()], [], scalars, False)
    torch.testing.assert_close(traced[0], want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_exported_optimizer_steps_like_the_operator(name, tmp_path):
    f = formula(name)
    path = tmp_path / f"export_{name}.py"
    path.write_text(torch_source(f, lr=0.1))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    g, w = values(2)
    p = w.clone().requires_grad_()
    p.grad = g.clone()
    module.DiscoveredOptimizer([p], lr=0.1).step()
    want = w - 0.1 * f.evaluate({"g": g, "w": w})
    torch.testing.assert_close(p.detach(), want, rtol=1e-12, atol=1e-12)
    fused = w.clone()
    module._fused_update([fused], [g.clone()], [{}], torch.tensor([0.1, 1.0, 1.0], dtype=w.dtype), False)
    torch.testing.assert_close(fused, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_simplify_round_trip_and_latex(name):
    f = formula(name)
    back = parse_formula(to_text(from_sympy(f.sympy, GRAMMAR, set(BUILTIN_OPERATORS))), GRAMMAR)
    assert same_values(f, back), (name, back.text)
    assert same_values(f, simplify(f)), name
    text = f.latex()
    top = type(f.sympy)
    if top in FORMS:
        assert text == form_latex(top).format(*(print_latex(a) for a in f.sympy.args)), (name, text)
    assert name in operator_table()


def test_entry_without_a_field_fails_naming_it():
    entry = Builtin("bad", 1, lambda o, x: o.tanh(x), sp.tanh, r"\tanh({0})", None, lambda *f: False)
    with pytest.raises(TypeError, match="'doc'"):
        build(entry)
