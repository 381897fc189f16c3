"""Built-in operators: torch equals sympy numerically, values and derivatives stay finite,
and guarded sympy functions reduce to plain sympy exactly when that is provably safe."""

import itertools
import math

import numpy as np
import pytest
import sympy as sp
import torch

from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.operators import BUILTIN_OPERATORS
from dsr_l2o.safe_sympy import GUARDED, TINY, ClampedExp, LogAbs, SafeDiv, SafePow, bounds, expand_guards

SPECIAL = [0.0, 1e-13, -1e-13, 1e-300, -1e-300, 5e-324, 1e-12, -1e-12, 1.0, -1.0, 0.5, -2.5,
           19.99, 20.0, 20.01, 30.0, -30.0, 1e6, -1e6]
X, Y = sp.symbols("x y", real=True)


def inputs(arity):
    rng = np.random.default_rng(1)
    values = SPECIAL + list(rng.normal(size=12) * 5)
    if arity == 1:
        return (np.array(values),)
    pairs = np.array(list(itertools.product(values, repeat=2)))
    return pairs[:, 0], pairs[:, 1]


def as_numpy(name, arity):
    op = BUILTIN_OPERATORS[name]
    symbols = (X, Y)[:arity]
    return sp.lambdify(symbols, expand_guards(op.sympy(*symbols)), "numpy")


@pytest.mark.parametrize("name", sorted(BUILTIN_OPERATORS))
def test_torch_equals_sympy(name):
    op = BUILTIN_OPERATORS[name]
    args = inputs(op.arity)
    got = op.torch(*(torch.tensor(a, dtype=torch.float64) for a in args)).numpy()
    with np.errstate(all="ignore"):
        want = np.broadcast_to(as_numpy(name, op.arity)(*args), got.shape)
    assert np.allclose(got, want, rtol=1e-12, atol=0), name


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", sorted(BUILTIN_OPERATORS))
def test_values_and_derivatives_are_finite(name, dtype):
    op = BUILTIN_OPERATORS[name]
    args = [torch.tensor(a, dtype=dtype, requires_grad=True) for a in inputs(op.arity)]
    out = op.torch(*args)
    assert torch.isfinite(out).all(), name
    grads = torch.autograd.grad(out.sum(), args, allow_unused=True)
    for grad in grads:
        assert grad is None or torch.isfinite(grad).all(), name


def test_sqrt_derivative_is_capped_at_zero_and_exact_elsewhere():
    x = torch.tensor([0.0, 4.0, -4.0, 1e-30], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(BUILTIN_OPERATORS["sqrt"].torch(x).sum(), x)
    assert grad[0] == 0 and grad[1] == pytest.approx(0.25) and grad[2] == pytest.approx(-0.25)
    assert grad[3] == pytest.approx(0.5 / math.sqrt(TINY))
    plain = BUILTIN_OPERATORS["sqrt"].torch(x.detach())  # no derivative taken: the short path
    assert not plain.requires_grad and torch.equal(plain, BUILTIN_OPERATORS["sqrt"].torch(x).detach())
    functional = torch.func.grad(lambda y: BUILTIN_OPERATORS["sqrt"].torch(y).sum())(x.detach())
    assert torch.equal(functional, grad)  # torch.func's derivative is the capped one too


def test_custom_operator_torch_equals_sympy():
    grammar = load_grammar()
    op = grammar.operators["softsign"]
    (x,) = inputs(1)
    got = op.torch(torch.tensor(x)).numpy()
    want = sp.lambdify(X, expand_guards(op.sympy(X)), "numpy")(x)
    assert np.allclose(got, want, rtol=1e-12, atol=0)
    assert op.latex.format("x") == r"\operatorname{softsign}\left(x\right)"


@pytest.mark.parametrize("text, guard", [
    ("m_hat / (sqrt(v_hat) + 1e-8)", None),  # Adam: denominator >= 1e-8
    ("m / (v + 1)", None),
    ("exp(sign(g))", None),
    ("exp(-abs(g))", None),
    ("log(v + 1)", None),
    ("log(-exp(sign(g)) - 1)", None),
    ("log(-exp(g) - 1)", ClampedExp),  # the log is safe, the exp of an unbounded g is not
    ("pow(2, 3)", None),
    ("div(g, 4)", None),
    ("m / sqrt(v)", SafeDiv),
    ("g / m", SafeDiv),
    ("exp(g)", ClampedExp),
    ("exp(abs(sign(g) - 30))", ClampedExp),
    ("exp(sign(g) + 30)", ClampedExp),
    ("log(g)", LogAbs),
    ("log(v)", LogAbs),
    ("pow(v, 0.5)", SafePow),
])
def test_guards_reduce_only_when_provably_safe(text, guard):
    expression = parse_formula(text).sympy
    found = {type(a) for a in expression.atoms(sp.Function) if isinstance(a, GUARDED)}
    assert found == ({guard} if guard else set()), (text, expression)


def test_reduced_guards_keep_their_values():
    x = sp.Symbol("x", real=True)
    assert SafeDiv(x, 0) == x / sp.Float(TINY)
    assert SafeDiv(x, -1e-20) == -x / sp.Float(TINY)
    assert float(ClampedExp(30)) == pytest.approx(math.exp(20))
    assert float(LogAbs(0)) == pytest.approx(math.log(TINY))
    assert float(SafePow(0, 2)) == pytest.approx(TINY**2)
    assert float(SafePow(-3, 2)) == pytest.approx(9)


def test_bounds_are_conservative():
    g = sp.Symbol("g", real=True)
    v = sp.Symbol("v", nonnegative=True)
    assert bounds(sp.Abs(sp.sign(g) - 30)) == (29.0, 31.0)
    assert bounds(ClampedExp(sp.sign(g) + 30))[0] <= math.exp(20) * (1 + 1e-12)
    assert bounds(sp.sqrt(v) + 1e-8)[0] == 1e-8
    assert bounds(sp.Max(g, 2)) == (2.0, math.inf) and bounds(sp.Min(v, -1))[1] == -1.0
    assert bounds(sp.log(v + 2))[0] == pytest.approx(math.log(2))
    lo, hi = bounds(LogAbs(g))
    assert lo == pytest.approx(math.log(TINY)) and hi == math.inf
    rng = np.random.default_rng(0)
    expressions = [sp.Abs(sp.tanh(g) - 3) * sp.sign(g), ClampedExp(sp.sign(g) * 25), LogAbs(sp.tanh(g) + 2),
                   sp.Max(sp.sign(g), sp.tanh(g)) - sp.Min(sp.Abs(sp.sign(g)), 0.5)]
    for expression in expressions:
        lo, hi = bounds(expression)
        fn = sp.lambdify(g, expand_guards(expression), "numpy")
        values = np.broadcast_to(fn(np.concatenate([rng.normal(size=200) * 10, [0.0]])), (201,))
        assert lo - 1e-9 <= values.min() and values.max() <= hi + 1e-9, expression
