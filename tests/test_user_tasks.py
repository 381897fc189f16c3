"""A task with only the four documented members works everywhere; a task family in --tasks is
sampled; the per-task best baseline and its ratios are reported."""

import json
import math

import pytest
import torch

from dsr_l2o.cli import main
from dsr_l2o.evaluation import (Comparison, EvalProtocol, TuneResult, compare, geometric_mean_ratio, score_ratio,
                                tune)
from dsr_l2o.evaluation.protocol import with_data_seed
from dsr_l2o.export.markdown import comparison_block
from dsr_l2o.tasks import get_task, get_tasks, is_family, is_task, task_seed, task_to
from dsr_l2o.tasks.base import MovedTask
from user_task_module import LeastSquares, make_family

TINY = ["--seeds", "1", "--lrs", "0.01,0.1", "--steps", "8", "--extend-edges", "0"]


def test_four_member_task_is_a_task_with_documented_defaults():
    task = LeastSquares()
    assert is_task(task) and not is_family(task) and is_family(make_family())
    assert task_seed(task) is None and task_seed(get_task("mlp_digits_tanh")) == 0
    assert task_to(task, "cpu") is task
    assert with_data_seed(task, 5) is task
    moved = MovedTask(task, "cpu")
    params = [p.requires_grad_(True) for p in moved.init(0)]
    moved.loss(params, 0).backward()
    assert params[0].grad is not None and moved.name == task.name
    result = tune("adam", task, EvalProtocol(lrs=(0.1,), seeds=(0, 1), extend_edges=0))
    assert result.best_score < task.loss(task.init(0), 0).item()


def test_user_task_module_through_evaluate_and_tasks(tmp_path, capsys):
    out = tmp_path / "eval"
    main(["evaluate", "m_hat / (sqrt(v_hat) + 1e-8)", "--tasks", "user_task_module:LeastSquares",
          "--baselines", "adam,sgd", "--out", str(out), *TINY])
    data = json.loads((out / "evaluation.json").read_text())
    assert list(data["tasks"]) == ["least_squares"]
    start = LeastSquares().loss(LeastSquares().init(0), 0).item()
    assert all(r["best_score"] < start for r in data["tasks"]["least_squares"]["results"].values())
    capsys.readouterr()
    main(["tasks", "user_task_module:LeastSquares"])
    assert "data seed: none (the init seed only)" in capsys.readouterr().out


def test_family_in_tasks_is_sampled(tmp_path, capsys):
    tasks = get_tasks(["user_task_module:make_family", "quadratic_wellcond"], family_samples=3)
    assert [t.name for t in tasks] == ["scaled_least_squares-0", "scaled_least_squares-1",
                                       "scaled_least_squares-2", "quadratic_wellcond"]
    assert len(get_tasks(["quadratics"], family_samples=2)) == 2
    out = tmp_path / "eval"
    main(["evaluate", "g", "--tasks", "user_task_module:make_family", "--family-samples", "2",
          "--baselines", "adam,sgd", "--out", str(out), *TINY])
    data = json.loads((out / "evaluation.json").read_text())
    assert list(data["tasks"]) == ["scaled_least_squares-0", "scaled_least_squares-1"]
    capsys.readouterr()
    main(["tasks", "user_task_module:make_family"])
    assert "seed 1: scaled_least_squares-1" in capsys.readouterr().out


def test_ratios_share_one_definition():
    assert score_ratio(2.0, 4.0) == 0.5 and score_ratio(math.inf, 1.0) == math.inf
    assert score_ratio(1.0, None) is None and score_ratio(1.0, math.inf) is None
    assert score_ratio(0.0, 0.0) == 1.0  # both clamped at the floor
    assert geometric_mean_ratio([1.0, 4.0], [4.0, 1.0]) == pytest.approx(1.0)
    assert geometric_mean_ratio([1.0, math.inf], [1.0, 1.0]) == math.inf
    assert geometric_mean_ratio([1.0], [math.nan]) is None and geometric_mean_ratio([], []) is None


def test_comparison_reports_the_best_baseline_ratio_and_rank():
    task = get_task("quadratic_wellcond")
    comparison = compare(["sgd", torch.optim.Adam, "momentum"], [task], EvalProtocol(lrs=(0.01, 0.1, 1.0), seeds=(0,), steps=15, extend_edges=0),
                         candidates=("Adam",))
    scores = {n: comparison.results[task.name][n].best_score for n in ("sgd", "momentum")}
    best = min(scores, key=scores.get)
    assert comparison.baselines == ["sgd", "momentum"] and comparison.best_baseline(task.name) == best
    assert comparison.ratio_to_best(task.name, best) == 1.0
    adam = comparison.results[task.name]["Adam"].best_score
    assert comparison.ratio_to_best(task.name, "Adam") == pytest.approx(adam / scores[best])
    assert comparison.geomean_ratio_to_best("Adam") == pytest.approx(adam / scores[best])
    for result in comparison.results[task.name].values():
        assert TuneResult.from_json(json.loads(json.dumps(result.to_json()))) == result
    data = comparison.to_json()
    assert data["tasks"][task.name]["best_baseline"] == best
    assert data["ratio_to_best_baseline"][task.name]["Adam"] == pytest.approx(adam / scores[best])
    assert "/best" in comparison.table() and f"best baseline {best}" in comparison.table()
    page = "\n".join(comparison_block(data))
    assert "score / best baseline" in page and f"<code>{best}</code> (best baseline)" in page
    assert Comparison(comparison.protocol, comparison.results, comparison.thresholds).baselines == [
        "sgd", "Adam", "momentum"]


def test_evaluate_default_search_lists_the_modern_baselines_and_the_best_per_task(tmp_path, capsys):
    pytest.importorskip("pytorch_optimizer")
    pytest.importorskip("schedulefree")
    main(["evaluate", "searches/default", "--tasks", "quadratic_wellcond", "--out", str(tmp_path / "e"),
          "--seeds", "1", "--lrs", "0.1", "--steps", "5", "--extend-edges", "0"])
    stdout = capsys.readouterr().out
    listed = next(line for line in stdout.splitlines() if line.endswith(tuple("abcdefghijklmnopqrstuvwxyz"))
                  and " tuned baselines: " in line)
    count = int(listed.split()[0])
    assert count >= 12
    for name in ("adamw", "nadam", "muon", "grams", "adopt", "laprop", "mars", "ademamix", "cautious_adamw",
                 "schedulefree_adamw"):
        assert name in listed
    assert "best baseline per task: quadratic_wellcond: " in stdout


def test_user_optimizer_class_and_four_member_task_through_distil(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    out = tmp_path / "d"
    main(["distil", "user_optimizers:SignSGD", "--tasks", "user_task_module:LeastSquares", "--episodes", "3",
          "--steps", "15", "--lr", "0.01", "--out", str(out), "--quiet"])
    data = json.loads((out / "result.json").read_text())
    assert data["route"] == "distil" and data["teacher"].startswith("user_optimizers:SignSGD")
    assert data["formula"] == "sign(g)" and data["exact"] is True
    with pytest.raises(SystemExit) as info:
        main(["distil", "user_optimizers:NotAnOptimizer", "--tasks", "user_task_module:LeastSquares",
              "--out", str(tmp_path / "e"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1
