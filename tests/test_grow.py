"""The grow stage: measured scale degrees, correction terms, batched quadratic runs, ranking."""

import math

import pytest
import torch

from dsr_l2o import expr as ex
from dsr_l2o.errors import ConfigError
from dsr_l2o.evaluation import formula_spec
from dsr_l2o.evaluation.protocol import train
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.search.config import load_config
from dsr_l2o.search.grow import WINDOW, Probe, correction_terms, grow, lr_windows
from dsr_l2o.search.quadratic_batch import QuadraticBatch
from dsr_l2o.tasks import get_family, get_task
from dsr_l2o.tasks.quadratic import QuadraticTask

SMALL = """\
name: small
operands:
  g: grad
  w: param
  m: {ema: g, beta: 0.9}
unary: [sign, abs]
binary: [add, mul]
constants: []
"""


@pytest.fixture(scope="module")
def default():
    return load_grammar(None)


@pytest.mark.parametrize("text, degree", [("g", 1.0), ("v", 2.0), ("sqrt(v_hat)", 1.0), ("m_tilde", 0.0),
                                          ("sign(g) * abs(m)", 1.0), ("exp(g)", None), ("g + v", None)])
def test_degree_is_measured_from_gradient_scaling(default, text, degree):
    assert Probe(default).degree(default.parse(text)) == degree


def test_corrections_have_the_base_scale_and_are_distinct(default):
    probe = Probe(default)
    base = default.parse("m")
    terms = correction_terms(default, base, probe)
    assert len(terms) > 20
    assert all(probe.degree(t) == 1.0 for t in terms)
    keys = [probe.fingerprint(t) for t in terms]
    assert len(set(keys)) == len(keys)
    assert probe.fingerprint(base) not in keys
    assert not any("w" in ex.variables(t) for t in terms)
    wanted = probe.fingerprint(default.parse("sign(g) * abs(m)"))
    assert wanted in keys or tuple(-v for v in wanted) in keys


def test_corrections_use_only_the_grammar(tmp_path):
    grammar = load_grammar(SMALL)
    terms = correction_terms(grammar, grammar.parse("m"))
    assert terms
    for term in terms:
        assert ex.operators_used(term) <= {"sign", "abs", "mul"}
        assert ex.variables(term) <= {"g", "m"}


def test_no_corrections_without_add_and_mul_or_a_scale(default):
    no_add = load_grammar(SMALL.replace("binary: [add, mul]", "binary: [mul]"))
    assert correction_terms(no_add, no_add.parse("m")) == []
    assert correction_terms(default, default.parse("exp(g)")) == []


def test_batched_runs_match_the_protocols_training_loop(default):
    tasks = [QuadraticTask("a", 7, 300.0, 0.1, steps=40, seed=3), QuadraticTask("b", 4, 20.0, 0.0, steps=40, seed=5)]
    batch = QuadraticBatch(tasks, steps=40, seed=2)
    formula = parse_formula("m + 0.3 * sign(g) * abs(m)")
    lrs = [0.01, 0.1]
    losses = batch.losses(default, formula.expr, lrs)
    assert losses.shape == (40, 1, 2, 2)
    for t, task in enumerate(tasks):
        for j, lr in enumerate(lrs):
            run = train(formula_spec(formula), task, lr, seed=2, steps=40)
            assert torch.allclose(losses[:, 0, j, t], torch.tensor(run.losses), rtol=1e-4, atol=1e-6)


def test_batched_constants_and_divergence(default):
    batch = QuadraticBatch([QuadraticTask("a", 5, 10.0, steps=30, seed=1)], steps=30)
    rule = ex.Call("mul", (ex.Var("__c"), ex.Var("g")))
    losses = batch.losses(default, rule, [0.1], constants=[0.0, 1.0, 1e4])
    assert torch.allclose(losses[:, 0, 0, 0], losses[0, 0, 0, 0].expand(30))  # c = 0 never moves
    assert losses[-1, 1, 0, 0] < losses[0, 1, 0, 0]
    assert math.isinf(float(losses[-1, 2, 0, 0]))  # lr * c = 1000 >> 2 / curvature
    scores = batch.tuned_scores(default, rule, [0.1], constants=[0.0, 1.0, 1e4])
    assert scores[0] == 0.0 and scores[1] < 0 and math.isinf(float(scores[2]))


def test_batch_refuses_non_quadratic_tasks():
    with pytest.raises(ConfigError, match="quadratic"):
        QuadraticBatch([get_task("rosenbrock_2d")], steps=10)


def test_grow_ranks_corrections_and_improves_on_momentum():
    grammar = load_grammar(SMALL)
    family = get_family("hard_quadratics")
    tasks = [family.sample(seed) for seed in range(4)]
    lines = []
    bases = [parse_formula("g", grammar), parse_formula("m", grammar)]
    ranking = grow(bases, tasks, 120, [0.2, 0.5], log=lines.append)
    scores = [g.score for g in ranking]
    assert scores == sorted(scores)
    assert [g.formula.text for g in ranking if g.constant == 0.0] == ["m", "g"]  # momentum wins here
    base = next(g for g in ranking if g.constant == 0.0)
    assert ranking[0].score < base.score  # some correction of heavy-ball momentum does better
    assert all(ex.to_text(g.formula.expr.args[0]) == "m" and g.formula.expr.op == ("add" if g.constant > 0 else "sub")
               for g in ranking if g.constant)
    assert all(g.formula.grammar == grammar for g in ranking)
    assert any("correction terms of m" in line for line in lines)


def test_lr_windows_centre_on_the_base_rules_best_lr_per_task(default):
    tasks = [QuadraticTask("a", 6, 10.0, steps=60, seed=1), QuadraticTask("b", 6, 10.0, steps=60, seed=1)]
    tasks[1].hessian = tasks[1].hessian * 100.0  # same task, 100x the curvature: 1/100 the best lr
    batch = QuadraticBatch(tasks, steps=60)
    windows = lr_windows(batch, parse_formula("g"))
    assert windows.shape == (len(WINDOW), 2)
    assert torch.allclose(windows[:, 0] / windows[:, 1], torch.full((len(WINDOW),), 100.0, dtype=torch.float64))
    per_task = batch.final_log_losses(default, default.parse("g"), windows)
    assert per_task.shape == (1, len(WINDOW), 2)
    assert torch.allclose(per_task[0, :, 0], per_task[0, :, 1], atol=1e-3)  # lr x curvature is all that matters


@pytest.mark.parametrize("key, value", [("grow", "yes"), ("grow_constants", []), ("grow_constants", [0.0]),
                                        ("grow_keep", 0), ("grow_tasks", "")])
def test_grow_settings_are_validated(key, value):
    with pytest.raises(ConfigError, match=key):
        load_config(None, **{key: value})


def test_markdown_report_shows_stages_and_the_grow_ranking():
    from dsr_l2o.export.markdown import candidates_block

    data = {"candidates": [{"formula": "m", "stage": "relaxation", "lr": 2.0, "score_ratio_to_adam": 0.9},
                           {"formula": "m + 0.2 * sign(g) * abs(m)", "stage": "grow", "lr": 2.0,
                            "score_ratio_to_adam": 0.7}],
            "grow": {"base": "m", "tasks": "hard_quadratics", "episodes": 12, "terms": 227,
                     "ranking": [{"formula": "m + 0.2 * sign(g) * abs(m)", "score": -6.7},
                                 {"formula": "m", "score": -6.25}]}}
    page = "\n".join(candidates_block(data))
    assert "| # | formula | stage | lr | score / tuned Adam | rejected |" in page
    assert "| grow |" in page and "## Grow stage" in page
    assert "227 terms" in page and "hard_quadratics" in page and "-6.7" in page
    assert "## Grow stage" not in "\n".join(candidates_block({"candidates": data["candidates"]}))
