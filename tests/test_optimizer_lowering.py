"""The compiled update direction equals the reference evaluator (safe semantics) everywhere."""

import pytest
import torch

from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.layout import dispatch
from dsr_l2o.lowering import TensorOps, compile_formula
from dsr_l2o.optimizer import SymbolicOptimizer

GRAMMAR_YAML = """name: every-operand
operands:
  g: grad
  w: param
  t: step
  m: {ema: g, beta: 0.9}
  v: {ema: "g**2", beta: 0.999}
  m_hat: {ema: g, beta: 0.9, debias: true}
  v_hat: {ema: "g**2", beta: 0.999, debias: true}
  d: {expr: "g - m"}
  g_prev: {prev: g}
  e: {prev: "d * w"}
operators:
  softsign: {args: [x], expr: "x / (1 + abs(x))"}
"""


@pytest.fixture(scope="module")
def grammar(tmp_path_factory):
    path = tmp_path_factory.mktemp("grammar") / "every_operand.yaml"
    path.write_text(GRAMMAR_YAML)
    return load_grammar(str(path))

FORMULAS = [
    "neg(g) + sign(m) * abs(w)",
    "square(g) - sqrt(v) * g",
    "sqrt(g) * sign(g) + sqrt(d)",
    "exp(g) / (1 + exp(m))",
    "exp(g * 1000) - exp(sign(g) * sign(m)) * g",
    "log(g) * tanh(m) + log(v + 1e-8)",
    "relu(g - m) + max(g, w) - min(m, 0.5) + min(g, min(m, w))",
    "pow(v, 0.25) * g + g**0.5 + pow(g, w)",
    "abs(g)**1.5 - g**3 / (1 + g**2)",
    "g / m",
    "div(g, g) * (1 / g)",
    "g / (m - m)",
    "m / w - 2 * g / (1e-13 + 0 * g)",
    "m_hat / (sqrt(v_hat) + 1e-8)",
    "m_hat / sqrt(v_hat)",
    "softsign(g) + softsign(d) * sign(d)",
    "(g - g_prev) * sign(e) + sqrt(e)",
    "g * t / (1 + t) + exp(neg(t)) * w",
    "pow(t, 0.5) + log(t) * g - sign(g - t) * max(g, t)",
    "sign(g) * sign(g) + g * g * g / (v + 1) + sign(g)",
    "log(0 * g)",
    "2",
    "t",
]


def sample(shape, gen, nonnegative=False, dtype=torch.float64):
    """Values over many scales, with exact zeros and tiny values mixed in."""
    x = torch.randn(shape, generator=gen, dtype=dtype) * 10 ** torch.empty(shape, dtype=dtype).uniform_(-3, 2, generator=gen)
    pick = torch.rand(shape, generator=gen)
    x = torch.where(pick < 0.15, torch.zeros_like(x), x)
    x = torch.where((pick >= 0.15) & (pick < 0.25), torch.sign(x) * 1e-30, x)
    x = torch.where((pick >= 0.25) & (pick < 0.35), torch.sign(x) * 1e-13, x)
    x = torch.where((pick >= 0.35) & (pick < 0.40), torch.sign(x) * 1e-7, x)
    return x.abs() if nonnegative else x


class ReferenceEnv:
    """Operand values of tensor ``i`` written out from the definitions (a layout backend)."""

    def __init__(self, program, params, grads, state, t, i):
        self.program, self.params, self.grads, self.state, self.t, self.i = program, params, grads, state, t, i
        self.env = {}

    def gradient(self, op):
        return self.grads[self.i]

    def parameter(self, op):
        return self.params[self.i]

    def step(self, op):
        return torch.tensor(float(self.t), dtype=self.grads[self.i].dtype)

    def derived(self, op):
        return self.program.formula.grammar.evaluate(op.source, self.env)

    def average(self, op):
        raw = self.state[self.program.state_of[op.name]][self.i]
        return raw / (1 - op.beta**self.t) if op.debias else raw

    def previous(self, op):
        return self.state[op.name][self.i]


def reference_env(program, params, grads, state, t, i):
    backend = ReferenceEnv(program, params, grads, state, t, i)
    backend.env = {"g": grads[i], "w": params[i], "t": torch.tensor(float(t), dtype=grads[i].dtype)}
    for op in program.layout.operands():
        backend.env[op.name] = dispatch(op, backend)
    return backend.env


def inputs(program, dtype, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shapes = [(40, 30), (30,), (7, 5, 3)]
    params = [sample(s, gen, dtype=dtype) for s in shapes]
    grads = [sample(s, gen, dtype=dtype) for s in shapes]
    state = {}
    for key in program.state_keys:
        nonneg = program.formula.grammar.operands[key].nonnegative
        state[key] = [sample(s, gen, nonnegative=nonneg, dtype=dtype) for s in shapes]
    return params, grads, state


@pytest.mark.parametrize("formula", FORMULAS)
@pytest.mark.parametrize("foreach", [True, False])
def test_compiled_direction_equals_reference_evaluator(formula, foreach, grammar):
    f = parse_formula(formula, grammar)
    program = compile_formula(f)
    assert program.lowered
    for dtype, rtol, atol in [(torch.float64, 1e-10, 1e-12), (torch.float32, 1e-4, 1e-5)]:
        params, grads, state = inputs(program, dtype)
        t = 7
        got = program.direction(TensorOps(foreach), params, grads, state, t)
        for i in range(len(params)):
            want = f.evaluate(reference_env(program, params, grads, state, t, i))
            assert got[i].dtype == dtype and got[i].shape == params[i].shape
            torch.testing.assert_close(got[i], want.expand_as(got[i]), rtol=rtol, atol=atol)


@pytest.mark.parametrize("formula", FORMULAS[::3])
def test_reference_fallback_program_agrees(formula, grammar):
    f = parse_formula(formula, grammar)
    fast, slow = compile_formula(f), compile_formula(f, lower=False)
    params, grads, state = inputs(fast, torch.float64, seed=1)
    a = fast.direction(TensorOps(True), params, grads, state, 3)
    b = slow.direction(TensorOps(False), params, grads, state, 3)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("formula", ["m_hat / (sqrt(v_hat) + 1e-8)", "sign(m + 0.1*g) + 0.01*w/t",
                                     "log(g) * tanh(d) + softsign(v)", "g / m", "g_prev - e * m"])
def test_foreach_and_per_tensor_optimizers_agree(formula, grammar):
    gen = torch.Generator().manual_seed(2)
    shapes = [(64, 32), (32,), (10, 3, 3)]
    start = [torch.randn(s, generator=gen) for s in shapes]
    runs = []
    for foreach in (True, False):
        params = [p.clone().requires_grad_() for p in start]
        opt = SymbolicOptimizer(params, formula, lr=1e-2, grammar=grammar, weight_decay=0.01, foreach=foreach)
        for step in range(5):
            g = torch.Generator().manual_seed(100 + step)
            for p in params:
                p.grad = torch.randn(p.shape, generator=g)
            opt.step()
        runs.append(params)
    for p, q in zip(*runs):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


class RecordingOps(TensorOps):
    def __init__(self, foreach):
        super().__init__(foreach)
        self.calls = []

    def out(self, name, *args, **kw):
        self.calls.append(name)
        return super().out(name, *args, **kw)

    def inplace(self, name, target, *args, **kw):
        self.calls.append(name + "_")
        return super().inplace(name, target, *args, **kw)


def test_adam_program_is_as_short_as_torch_adam():
    program = compile_formula(parse_formula("m_hat/(sqrt(v_hat)+1e-8)"))
    params, grads = [torch.randn(10)], [torch.randn(10)]
    state = {k: [torch.zeros(10)] for k in program.state_keys}
    ops = RecordingOps(True)
    program.run(ops, params, grads, state, 1, 1e-3)
    assert ops.calls == ["lerp_", "mul_", "addcmul_", "sqrt", "mul_", "add_", "addcdiv_"]


def test_plain_sgd_program_is_one_fused_op():
    program = compile_formula(parse_formula("g"))
    ops = RecordingOps(True)
    program.run(ops, [torch.randn(3)], [torch.randn(3)], {}, 1, 0.1)
    assert ops.calls == ["add_"] and program.state_keys == []
