"""The fair evaluation protocol: scoring, the shared grid, best-lr choice, baselines and formulas."""

import json
import math

import numpy as np
import pytest
import torch

from dsr_l2o.errors import ConfigError, FormulaError
from dsr_l2o.evaluation import (BASELINE_NAMES, EvalProtocol, Run, compare, formula_spec, get_baseline,
                                get_baselines, run_score, steps_to_threshold, train, tune)
from dsr_l2o.optimizer import SymbolicOptimizer
from dsr_l2o.tasks import get_task

SMALL = EvalProtocol(lrs=(1e-3, 1e-2, 1e-1, 10.0), seeds=(0, 1), steps=30, extend_edges=0)


@pytest.fixture(scope="module")
def quadratic():
    return get_task("quadratic_wellcond")


@pytest.fixture(scope="module")
def rosenbrock():
    return get_task("rosenbrock_2d")


def test_score_is_mean_of_last_tenth_and_inf_when_diverged():
    losses = [float(i) for i in range(100, 0, -1)]  # 100 .. 1
    assert SMALL.window(100) == 10 and SMALL.window(5) == 1 and SMALL.window(15) == 2
    assert run_score(Run(losses, False, []), SMALL.window(100)) == pytest.approx(5.5)
    assert run_score(Run(losses[:7] + [math.nan], True, []), 10) == math.inf


def test_diverging_run_stops_at_first_nonfinite_loss(rosenbrock):
    run = train(get_baseline("sgd"), rosenbrock, lr=1.0, seed=0, steps=200)
    assert run.diverged and len(run.losses) < 200
    assert not math.isfinite(run.losses[-1]) and all(map(math.isfinite, run.losses[:-1]))


def test_every_optimizer_gets_the_same_grid_and_seeds(quadratic):
    results = [tune(get_baseline(name), quadratic, SMALL) for name in ("sgd", "adam", "lion")]
    for r in results:
        assert list(r.scores_by_lr) == list(SMALL.lrs)
        assert all(len(s) == len(SMALL.seeds) for s in r.seed_scores.values())
        assert r.steps == 30 and r.window == 3


def test_best_lr_is_argmin_and_score_matches_independent_runs(quadratic):
    result = tune(get_baseline("momentum"), quadratic, SMALL)
    finite = {lr: s for lr, s in result.scores_by_lr.items() if math.isfinite(s)}
    assert result.best_lr == min(finite, key=finite.get)
    assert result.best_score == min(finite.values())
    assert result.scores_by_lr[10.0] == math.inf  # heavy ball at lr 10 diverges on this bowl
    runs = [train(get_baseline("momentum"), quadratic, result.best_lr, seed, 30) for seed in SMALL.seeds]
    assert result.best_score == pytest.approx(np.mean([np.mean(r.losses[-3:]) for r in runs]), rel=1e-6)
    assert result.curve == pytest.approx(np.mean([r.losses for r in runs], axis=0).tolist(), rel=1e-6)
    expected = np.mean([quadratic.heldout(r.params)["test_loss"] for r in runs])
    assert result.heldout["test_loss"] == pytest.approx(expected, rel=1e-6)


def test_lrs_past_an_edge_step_at_the_grid_spacing():
    grid = EvalProtocol(lrs=(0.01, 0.1, 1.0))
    assert grid.beyond(1.0) == 10.0 and grid.beyond(10.0) == 100.0
    assert grid.beyond(0.01) == 0.001 and grid.beyond(0.1) is None
    assert EvalProtocol(lrs=(0.5,)).beyond(0.5) is None


def test_best_lr_at_the_grid_top_extends_the_grid_while_the_score_improves(quadratic):
    calls = []
    protocol = EvalProtocol(lrs=(1e-4, 1e-3), seeds=(0,), steps=30, extend_edges=4)
    result = tune(get_baseline("sgd"), quadratic, protocol, progress=calls.append)
    extra = [lr for lr in result.scores_by_lr if lr not in protocol.lrs]
    assert extra and extra == [float(f"{1e-3 * 10 ** (i + 1):.3g}") for i in range(len(extra))]
    assert result.best_lr == min(result.scores_by_lr, key=result.scores_by_lr.get) and result.best_lr > 1e-3
    assert len(calls) == protocol.runs_per_tune  # progress counts the grid only
    if len(extra) < 4:  # it stopped because the last extra lr did not improve
        assert result.scores_by_lr[extra[-1]] >= result.best_score
    fixed = tune(get_baseline("sgd"), quadratic, EvalProtocol(lrs=(1e-4, 1e-3), seeds=(0,), steps=30, extend_edges=0))
    assert list(fixed.scores_by_lr) == [1e-4, 1e-3] and fixed.best_lr == 1e-3 and fixed.best_score > result.best_score


def test_all_learning_rates_diverging_gives_inf_and_no_curve(rosenbrock):
    result = tune(get_baseline("sgd"), rosenbrock, EvalProtocol(lrs=(1.0, 3.0), seeds=(0,), steps=50))
    assert result.diverged and result.best_lr is None and result.curve is None
    assert result.best_score == math.inf and result.heldout is None
    result.set_threshold(1.0)
    assert result.steps_to_threshold is None


def test_steps_to_threshold_uses_trailing_mean():
    curve = [10.0, 1.0, 1.0, 0.5, 0.5]
    assert steps_to_threshold(curve, 1.0, window=1) == 2
    assert steps_to_threshold(curve, 1.0, window=2) == 3  # (1 + 1) / 2 after three steps
    assert steps_to_threshold(curve, 0.1, window=2) is None
    assert steps_to_threshold(None, 1.0, window=2) is None


def test_compare_threshold_is_median_and_ranks_follow_scores(quadratic):
    comparison = compare(get_baselines(["sgd", "adam", "rmsprop"]), [quadratic], SMALL)
    per_task = comparison.results[quadratic.name]
    scores = sorted(r.best_score for r in per_task.values())
    assert comparison.thresholds[quadratic.name] == pytest.approx(scores[1])
    for r in per_task.values():
        if r.best_score <= scores[1]:
            assert 1 <= r.steps_to_threshold <= 30
    ranked = sorted(per_task, key=lambda n: comparison.rank(quadratic.name, n))
    assert [per_task[n].best_score for n in ranked] == scores
    assert comparison.winner(quadratic.name) == ranked[0]
    assert comparison.ratio(quadratic.name, "adam", "adam") == 1.0
    data = json.loads(json.dumps(comparison.to_json(), allow_nan=False))
    assert data["tasks"][quadratic.name]["winner"] == ranked[0]
    assert [e["lr"] for e in data["tasks"][quadratic.name]["results"]["sgd"]["scores_by_lr"]] == list(SMALL.lrs)
    table = comparison.table("adam")
    assert quadratic.name in table and all(name in table for name in ("sgd", "adam", "rmsprop"))


def _fixed_gradients(steps=6, n=5):
    gen = torch.Generator().manual_seed(3)
    return [torch.randn(n, generator=gen) for _ in range(steps)]


def _run_with_gradients(optimizer, param, grads):
    out = []
    for g in grads:
        param.grad = g.clone()
        optimizer.step()
        out.append(param.detach().clone())
    return out


def _reference(name, w, grads, lr):
    m, out = torch.zeros_like(w), []
    for g in grads:
        if name == "lion":
            w = w - lr * torch.sign(0.9 * m + 0.1 * g)
            m = 0.99 * m + 0.01 * g
        else:
            m = 0.9 * m + 0.1 * g
            agree = torch.sign(g) * torch.sign(m)
            w = w - lr * (torch.exp(agree) * g if name == "powersign" else (1 + agree) * g)
        out.append(w.clone())
    return out


@pytest.mark.parametrize("name", ["lion", "powersign", "addsign"])
def test_formula_baselines_follow_their_reference_algorithms(name):
    grads, w0 = _fixed_gradients(), torch.linspace(-1, 1, 5)
    param = w0.clone().requires_grad_(True)
    got = _run_with_gradients(get_baseline(name).make([param], 0.05), param, grads)
    want = _reference(name, w0, grads, 0.05)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_formula_spec_is_the_symbolic_optimizer_and_adam_formula_matches_torch_adam(quadratic):
    text = "m_hat / (sqrt(v_hat) + 1e-8)"
    spec = formula_spec(text)
    assert spec.formula == "m_hat / (sqrt(v_hat) + 1e-08)" and spec.name == spec.formula
    assert isinstance(spec.make([torch.zeros(2, requires_grad=True)], 0.1), SymbolicOptimizer)
    via_spec = train(spec, quadratic, 0.05, 0, 20)
    direct = train(type(spec)("direct", lambda p, lr: SymbolicOptimizer(p, text, lr=lr)), quadratic, 0.05, 0, 20)
    assert via_spec.losses == direct.losses
    adam = train(get_baseline("adam"), quadratic, 0.05, 0, 20)
    assert via_spec.losses == pytest.approx(adam.losses, rel=1e-4)


def test_bad_names_and_protocols_are_one_line_errors():
    with pytest.raises(ConfigError, match="unknown baseline 'adamm'"):
        get_baseline("adamm")
    with pytest.raises(ConfigError, match="twice"):
        get_baselines(["sgd", "sgd"])
    with pytest.raises(FormulaError):
        formula_spec("m_hat / (sqrt(v_hat) +")
    for bad in (dict(lrs=()), dict(lrs=(0.1, -1.0)), dict(seeds=()), dict(steps=0), dict(last_frac=0.0),
                dict(extend_edges=-1)):
        with pytest.raises(ConfigError):
            EvalProtocol(**bad)
    assert set(BASELINE_NAMES) == {"sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "lion",
                                   "powersign", "addsign", "nadam", "muon", "grams", "adopt", "laprop", "mars",
                                   "ademamix", "cautious_adamw", "schedulefree_adamw"}
