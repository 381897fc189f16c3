"""The batched engine gives the protocol's sequential results (scores, best lr, curves, held-out)."""

import math

import pytest
import torch

from dsr_l2o.engine import (FlatLayout, FlatLoss, train_formulas, train_optimizers, tune_batched,
                            vmap_unsupported)
from dsr_l2o.engine.explicit import explicit_loss
from dsr_l2o.engine.stacked_optim import stackable
from dsr_l2o.evaluation.baselines import OptimizerSpec, formula_spec, get_baseline
from dsr_l2o.evaluation.protocol import EvalProtocol, TuneResult, tune
from dsr_l2o.formula import parse_formula
from dsr_l2o.tasks import get_task
from dsr_l2o.tasks.quadratic import QuadraticTask

PROTOCOL = EvalProtocol(lrs=(1e-3, 1e-2, 1e-1), seeds=(0, 1), steps=15, extend_edges=2)
FORMULAS = ["m_hat / (sqrt(v_hat) + 1e-8)", "sign(m) * abs(g)", "g + 0.5 * m"]


def _specs():
    return [formula_spec(f) for f in FORMULAS] + [get_baseline("adam"), get_baseline("lion")]


def _same(seq: TuneResult, bat: TuneResult, rel=2e-4):
    """Equal results; per-lr scores are compared up to the best lr (above it, runs near the
    stability edge amplify rounding differences chaotically, in either trainer)."""
    assert (seq.optimizer, seq.task, seq.steps, seq.window, seq.formula) == \
        (bat.optimizer, bat.task, bat.steps, bat.window, bat.formula)
    assert list(seq.scores_by_lr) == list(bat.scores_by_lr)
    assert seq.best_lr == bat.best_lr
    for lr, scores in seq.seed_scores.items():
        if seq.best_lr is not None and lr > seq.best_lr:
            continue
        for a, b in zip(scores, bat.seed_scores[lr]):
            assert (a == b == math.inf) or a == pytest.approx(b, rel=rel, abs=1e-7), (lr, a, b)
    if seq.curve is None:
        assert bat.curve is None
    else:
        assert bat.curve == pytest.approx(seq.curve, rel=rel, abs=1e-6)
    if seq.heldout is not None:
        assert bat.heldout == pytest.approx(seq.heldout, rel=1e-3, abs=1e-5)


@pytest.mark.parametrize("name", ["quadratic_illcond", "noisy_quadratic", "rosenbrock_2d",
                                  "test_noisy_quadratic"])
def test_tune_batched_equals_sequential_tune(name):
    task = get_task(name)
    specs = _specs()
    batched = tune_batched(specs, task, PROTOCOL)
    assert len(batched) == len(specs)
    for spec, result in zip(specs, batched):
        _same(tune(spec, task, PROTOCOL), result)


@pytest.mark.parametrize("name", ["logreg_cancer", "mlp_diabetes", "val_attention", "val_cnn", "val_autoencoder"])
def test_tune_batched_equals_sequential_tune_on_networks(name):
    task = get_task(name)
    protocol = EvalProtocol(lrs=(1e-3, 1e-2), seeds=(0, 1), steps=12, extend_edges=1)
    specs = [formula_spec(FORMULAS[0]), formula_spec(FORMULAS[2]), get_baseline("adam")]
    for spec, result in zip(specs, tune_batched(specs, task, protocol)):
        _same(tune(spec, task, protocol), result, rel=1e-3)


def test_divergence_and_edge_extension_follow_the_protocol():
    task = get_task("rosenbrock_2d")
    protocol = EvalProtocol(lrs=(1e-4, 3e-4), seeds=(0, 1), steps=40, extend_edges=3)
    specs = [formula_spec("g"), formula_spec("sign(g) * 0.1"), get_baseline("sgd")]
    for spec, result in zip(specs, tune_batched(specs, task, protocol)):
        sequential = tune(spec, task, protocol)
        _same(sequential, result)
        assert len(result.scores_by_lr) > 2
    diverging = EvalProtocol(lrs=(0.5, 5.0), seeds=(0,), steps=20, extend_edges=0)
    spec = formula_spec("g")
    result = tune_batched(spec, task, diverging)
    assert isinstance(result, TuneResult) and result.diverged and result.curve is None
    _same(tune(spec, task, diverging), result)


def test_formula_strings_and_progress():
    task = get_task("quadratic_wellcond")
    calls = []
    results = tune_batched(["sign(g)", parse_formula("g")], task, PROTOCOL, progress=calls.append)
    assert [r.optimizer for r in results] == ["sign(g)", "g"]
    assert sum(calls) == 2 * PROTOCOL.runs_per_tune


class _ItemTask(QuadraticTask):
    """A task whose loss calls ``.item()``, which vmap cannot trace."""

    def loss(self, params, step):
        scale = 1.0 + 0.0 * params[0].sum().item()
        return scale * super().loss(params, step)


def test_task_vmap_cannot_run_falls_back_once():
    task = _ItemTask("item_quadratic", dim=6, condition=30.0, steps=20)
    assert explicit_loss(task) is None
    specs = [formula_spec("m_hat / (sqrt(v_hat) + 1e-8)"), get_baseline("adam")]
    for spec, result in zip(specs, tune_batched(specs, task, PROTOCOL)):
        _same(tune(spec, task, PROTOCOL), result)
    assert vmap_unsupported(task)


def test_vmap_and_explicit_losses_agree():
    task = get_task("mlp_digits_tanh")
    params = task.init(0)
    layout = FlatLayout.of(params)
    flat = layout.flatten(params)[None] + 0.01 * torch.randn(4, layout.numel, generator=torch.Generator().manual_seed(0))
    explicit = FlatLoss(task, layout)
    generic = FlatLoss(task, layout)
    generic.explicit = None
    (a, ga), (b, gb) = explicit.value_and_grad(flat, 3), generic.value_and_grad(flat, 3)
    assert torch.allclose(a, b, rtol=1e-5) and torch.allclose(ga, gb, rtol=1e-4, atol=1e-6)


def test_members_keep_their_order():
    task = get_task("quadratic_wellcond")
    formulas = [parse_formula("g"), parse_formula("sign(g)")]
    members = [(1, 0.1), (0, 0.1), (1, 0.01)]
    runs = train_formulas(formulas, task, members, seeds=(0,), steps=10)
    alone = train_formulas(formulas, task, [(1, 0.01)], seeds=(0,), steps=10)
    assert runs.losses[0, 2].tolist() == pytest.approx(alone.losses[0, 0].tolist(), rel=1e-6)
    assert runs.losses[0, 0, -1] != runs.losses[0, 1, -1]


@pytest.mark.parametrize("name", ["momentum", "nesterov", "rmsprop", "adamw"])
def test_stacked_torch_optimizers_equal_one_instance_per_run(name):
    task = get_task("mlp_diabetes")
    make = get_baseline(name).make
    members = [(0, 1e-3), (0, 3e-2), (0, 1e4)]
    stacked = train_optimizers([make], task, members, seeds=(0, 1), steps=12, stacked=True)
    per_run = train_optimizers([make], task, members, seeds=(0, 1), steps=12, stacked=False)
    assert (stacked.diverged == per_run.diverged).all()
    finite = ~per_run.diverged & (per_run.scores(3) < 10)  # beyond: chaotic, rounding-amplified
    assert finite.sum() >= 4
    assert stacked.scores(3)[finite] == pytest.approx(per_run.scores(3)[finite], rel=1e-4)
    assert stacked.final[1][1][0] == pytest.approx(per_run.final[1][1][0], rel=1e-3, abs=1e-6)


def test_other_optimizers_get_one_instance_per_run():
    assert stackable(get_baseline("adam").make)
    assert not stackable(lambda params, lr: torch.optim.Adagrad(params, lr=lr))
    spec = OptimizerSpec("adagrad", lambda params, lr: torch.optim.Adagrad(params, lr=lr))
    task = get_task("noisy_quadratic")
    _same(tune(spec, task, PROTOCOL), tune_batched(spec, task, PROTOCOL))


def test_formula_optimizer_with_weight_decay():
    from dsr_l2o.optimizer import SymbolicOptimizer

    text = "m_hat / (sqrt(v_hat) + 1e-8)"
    spec = OptimizerSpec("adam_formula_wd", lambda params, lr: SymbolicOptimizer(params, text, lr=lr, weight_decay=0.5),
                         formula=text)
    task = get_task("noisy_quadratic")
    _same(tune(spec, task, PROTOCOL), tune_batched(spec, task, PROTOCOL))
    plain = tune_batched(formula_spec(text), task, PROTOCOL)
    assert plain.best_score != tune_batched(spec, task, PROTOCOL).best_score


@pytest.mark.parametrize("name", ["quadratic_illcond", "val_logistic"])
def test_a_memo_trains_only_the_seeds_it_lacks_and_tunes_as_the_protocol(name):
    task = get_task(name)
    specs = [formula_spec(FORMULAS[0]), formula_spec(FORMULAS[1]), get_baseline("adam")]
    memo = {}
    tune_batched(specs, task, PROTOCOL, memo=memo)
    three = EvalProtocol(lrs=PROTOCOL.lrs, seeds=(0, 1, 2), steps=PROTOCOL.steps, extend_edges=PROTOCOL.extend_edges)
    for reused, fresh in zip(tune_batched(specs, task, three, memo=memo), tune_batched(specs, task, three)):
        assert reused.best_lr == fresh.best_lr
        for lr, scores in fresh.seed_scores.items():
            assert reused.seed_scores[lr] == pytest.approx(scores, rel=1e-5, abs=1e-9)
    assert {seed for *_, seed in memo} == {0, 1, 2}
    planted = {key: (0.0 if key[-1] == 1 else score) for key, score in memo.items()}  # seed 1 "solved" everywhere
    for result in tune_batched(specs, task, three, memo=planted):
        assert all(scores[1] == 0.0 for scores in result.seed_scores.values())  # read, not trained again
