"""SymbolicOptimizer against torch's optimizers and reference implementations on a real model.

A small MLP learns sklearn's bundled ``load_digits``; both optimizers see the same minibatches
and their parameters are compared after every step.
"""

import io

import pytest
import torch
from sklearn.datasets import load_digits

from dsr_l2o.errors import ConfigError, FormulaError
from dsr_l2o.formula import parse_formula
from dsr_l2o.optimizer import SymbolicOptimizer

_DIGITS = load_digits()
X = torch.tensor(_DIGITS.data / 16.0, dtype=torch.float32)
Y = torch.tensor(_DIGITS.target)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.Tanh(), torch.nn.Linear(32, 10)).to(dtype)


def clone_model(model):
    twin = make_model(next(model.parameters()).dtype)
    twin.load_state_dict(model.state_dict())
    return twin


def batch(step, size=64):
    idx = torch.randint(0, len(X), (size,), generator=torch.Generator().manual_seed(1000 + step))
    return X[idx], Y[idx]


def loss_at(model, step):
    x, y = batch(step)
    x = x.to(next(model.parameters()).dtype)
    return torch.nn.functional.cross_entropy(model(x), y)


def train_step(model, opt, step):
    opt.zero_grad()
    loss = loss_at(model, step)
    loss.backward()
    opt.step()
    return loss


def lockstep(make_a, make_b, steps=100, dtype=torch.float64, rtol=1e-5, atol=1e-7, start=0):
    """Train two copies side by side; assert equal parameters after every step.

    float64 by default: in float32, last-bit differences (e.g. ``sqrt(v) * sqrt(c)`` against
    ``sqrt(v) / sqrt(1 - beta**t)``) grow chaotically through Adam's normalised updates of
    coordinates whose gradient is almost zero.
    """
    a = make_model(dtype)
    b = clone_model(a)
    opt_a, opt_b = make_a(list(a.parameters())), make_b(list(b.parameters()))
    for step in range(start, start + steps):
        train_step(a, opt_a, step)
        train_step(b, opt_b, step)
        for pa, pb in zip(a.parameters(), b.parameters()):
            if not torch.allclose(pa, pb, rtol=rtol, atol=atol):
                torch.testing.assert_close(pa, pb, rtol=rtol, atol=atol, msg=lambda m: f"step {step}: {m}")
    moved = [(p - q).abs().max().item() for p, q in zip(a.parameters(), make_model(dtype).parameters())]
    assert max(moved) > 1e-3, "the optimizers did not train the model"
    return a, opt_a


class ReferenceOptimizer(torch.optim.Optimizer):
    """Applies ``rule(p, g, state, lr)`` to each parameter: the straightforward reference."""

    def __init__(self, params, rule, lr):
        super().__init__(params, {"lr": lr})
        self.rule = rule

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                self.rule(p, p.grad, self.state[p], group["lr"])


def lion_rule(p, g, state, lr):
    m = state.setdefault("m", torch.zeros_like(p))
    p.sub_(lr * torch.sign(0.9 * m + 0.1 * g))
    m.mul_(0.99).add_(0.01 * g)


def sign_rule(kind):
    def rule(p, g, state, lr):
        m = state.setdefault("m", torch.zeros_like(p))
        m.mul_(0.9).add_(0.1 * g)
        agree = torch.sign(g) * torch.sign(m)
        scale = torch.exp(agree) if kind == "powersign" else 1 + agree
        p.sub_(lr * scale * g)
    return rule


def write_grammar(tmp_path, operands: str) -> str:
    path = tmp_path / "grammar.yaml"
    path.write_text(f"name: test\noperands:\n{operands}\nunary: [sign, sqrt]\nbinary: [add, mul, div]\n")
    return str(path)


def test_g_equals_sgd():
    lockstep(lambda ps: SymbolicOptimizer(ps, "g", lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1),
             dtype=torch.float32, rtol=0, atol=0)


def test_adam_formula_equals_adam():
    lockstep(lambda ps: SymbolicOptimizer(ps, "m_hat/(sqrt(v_hat)+1e-8)", lr=1e-2),
             lambda ps: torch.optim.Adam(ps, lr=1e-2, eps=1e-8))


def test_adam_formula_with_weight_decay_equals_adamw():
    lockstep(lambda ps: SymbolicOptimizer(ps, "m_hat/(sqrt(v_hat)+1e-8)", lr=1e-2, weight_decay=0.1),
             lambda ps: torch.optim.AdamW(ps, lr=1e-2, eps=1e-8, weight_decay=0.1))


def test_rmsprop_from_custom_grammar(tmp_path):
    grammar = write_grammar(tmp_path, '  g: grad\n  v: {ema: "g**2", beta: 0.99}')
    lockstep(lambda ps: SymbolicOptimizer(ps, "g/(sqrt(v)+1e-8)", lr=1e-3, grammar=grammar),
             lambda ps: torch.optim.RMSprop(ps, lr=1e-3, alpha=0.99, eps=1e-8))


def test_lion_formula_equals_reference_lion(tmp_path):
    grammar = write_grammar(tmp_path, "  g: grad\n  m: {ema: g, beta: 0.99}")
    lockstep(lambda ps: SymbolicOptimizer(ps, "sign(m + 0.1*g)", lr=1e-3, grammar=grammar),
             lambda ps: ReferenceOptimizer(ps, lion_rule, lr=1e-3))


@pytest.mark.parametrize("kind,formula", [("powersign", "exp(sign(g)*sign(m))*g"),
                                          ("addsign", "(1 + sign(g)*sign(m))*g")])
def test_sign_rules_equal_references(kind, formula):
    lockstep(lambda ps: SymbolicOptimizer(ps, formula, lr=0.05),
             lambda ps: ReferenceOptimizer(ps, sign_rule(kind), lr=0.05))


def test_param_groups_have_their_own_lr_and_weight_decay():
    def groups(ps):
        return [{"params": ps[:2], "lr": 1e-2, "weight_decay": 0.2}, {"params": ps[2:], "lr": 3e-3}]

    lockstep(lambda ps: SymbolicOptimizer(groups(ps), "m_hat/(sqrt(v_hat)+1e-8)", weight_decay=0.0),
             lambda ps: torch.optim.AdamW(groups(ps), eps=1e-8, weight_decay=0.0), steps=40)


def test_state_dict_round_trip_continues_identically():
    formula = "m_hat/(sqrt(v_hat)+1e-8) + 0.01*sign(m)"
    model = make_model()
    opt = SymbolicOptimizer(model.parameters(), formula, lr=1e-2, weight_decay=0.01)
    for step in range(30):
        train_step(model, opt, step)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "opt": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)
    resumed = make_model(seed=123)
    resumed.load_state_dict(saved["model"])
    fresh = SymbolicOptimizer(resumed.parameters(), formula, lr=0.5)
    fresh.load_state_dict(saved["opt"])
    assert fresh.param_groups[0]["lr"] == 1e-2
    for step in range(30, 50):
        train_step(model, opt, step)
        train_step(resumed, fresh, step)
    for p, q in zip(model.parameters(), resumed.parameters()):
        assert torch.equal(p, q)
    assert fresh.state[next(resumed.parameters())]["step"] == 50


def test_load_state_dict_of_another_formula_is_a_clear_error():
    model = make_model()
    adam = SymbolicOptimizer(model.parameters(), "m_hat/(sqrt(v_hat)+1e-8)")
    train_step(model, adam, 0)
    sgd = SymbolicOptimizer(model.parameters(), "g")
    with pytest.raises(ConfigError, match="same formula"):
        sgd.load_state_dict(adam.state_dict())


def test_closure_is_called_and_its_loss_returned():
    model = make_model()
    opt = SymbolicOptimizer(model.parameters(), "m_hat/(sqrt(v_hat)+1e-8)", lr=1e-2)
    calls = []

    def closure():
        opt.zero_grad()
        loss = loss_at(model, 0)
        loss.backward()
        calls.append(loss.item())
        return loss

    first = opt.step(closure)
    for _ in range(20):
        last = opt.step(closure)
    assert len(calls) == 21 and first.item() == calls[0]
    assert last.item() < first.item()


def test_state_holds_only_the_moving_averages_the_formula_needs():
    model = make_model()
    params = list(model.parameters())
    cases = {"g": [], "m_hat/(sqrt(v_hat)+1e-8)": ["m_hat", "v_hat"], "m + m_hat + g": ["m"],
             "sign(m)": ["m"]}
    for formula, keys in cases.items():
        opt = SymbolicOptimizer(params, formula, lr=1e-3)
        train_step(model, opt, 0)
        for p in params:
            assert sorted(opt.state[p]) == sorted(keys + ["step"])
            assert all(opt.state[p][k].shape == p.shape for k in keys)


def test_formula_reading_param_and_step(tmp_path):
    grammar = write_grammar(tmp_path, "  g: grad\n  w: param\n  t: step")

    def rule(p, g, state, lr):
        state["t"] = state.get("t", 0) + 1
        p.sub_(lr * (g + 0.01 * p / state["t"]))

    lockstep(lambda ps: SymbolicOptimizer(ps, "g + 0.01*w/t", lr=0.1, grammar=grammar),
             lambda ps: ReferenceOptimizer(ps, rule, lr=0.1), steps=30)


def test_ema_of_an_expression_over_other_operands(tmp_path):
    grammar = write_grammar(
        tmp_path, '  g: grad\n  m: {ema: g, beta: 0.9}\n  d: {expr: "g - m"}\n'
                  '  s: {ema: "d*d", beta: 0.8, debias: true}')

    def rule(p, g, state, lr):
        m = state.setdefault("m", torch.zeros_like(p))
        s = state.setdefault("s", torch.zeros_like(p))
        state["t"] = t = state.get("t", 0) + 1
        m.mul_(0.9).add_(0.1 * g)
        s.mul_(0.8).add_(0.2 * (g - m) ** 2)
        p.sub_(lr * g / (torch.sqrt(s / (1 - 0.8**t)) + 1e-3))

    lockstep(lambda ps: SymbolicOptimizer(ps, "g/(sqrt(s)+1e-3)", lr=1e-3, grammar=grammar),
             lambda ps: ReferenceOptimizer(ps, rule, lr=1e-3), steps=30, rtol=1e-4, atol=1e-6)


def test_bad_arguments_are_clear_errors():
    params = list(make_model().parameters())
    with pytest.raises(ConfigError, match="lr"):
        SymbolicOptimizer(params, "g", lr=-1)
    with pytest.raises(ConfigError, match="string or a Formula"):
        SymbolicOptimizer(params, 3)
    with pytest.raises(ConfigError, match="grammar"):
        SymbolicOptimizer(params, parse_formula("g"), grammar="grammars/default.yaml")
    with pytest.raises(FormulaError):
        SymbolicOptimizer(params, "g +")
