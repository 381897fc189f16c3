"""``module:Class`` baselines, optimizer classes and factories, ``--baseline-kwargs``, and one-line
errors for every bad spec (Python API and command line)."""

import json

import pytest
import torch

from dsr_l2o.cli import main
from dsr_l2o.errors import ConfigError
from dsr_l2o.evaluation import (EvalProtocol, compare, get_baseline, get_baselines, parse_baseline_kwargs,
                                parse_baseline_list, train)
from dsr_l2o.tasks import get_task
from user_optimizers import SignSGD, sign_sgd_factory

TINY = ["--seeds", "1", "--lrs", "0.01,0.1", "--steps", "8", "--extend-edges", "0"]


@pytest.fixture
def quadratic():
    return get_task("quadratic_wellcond")


def params_after(spec, task, lr=0.05, steps=10):
    return train(spec, task, lr, 0, steps).params


def test_module_class_spec_steps_like_the_class(quadratic):
    lamb = pytest.importorskip("pytorch_optimizer").Lamb
    spec = get_baseline("pytorch_optimizer:Lamb")
    assert spec.name == "pytorch_optimizer:Lamb"
    direct = get_baseline(lambda params, lr: lamb(params, lr=lr))
    assert torch.allclose(params_after(spec, quadratic)[0], params_after(direct, quadratic)[0])


def test_keywords_reach_the_constructor_and_name_the_baseline(quadratic):
    spec = get_baseline("user_optimizers:SignSGD", weight_decay=0.5)
    assert spec.name == "user_optimizers:SignSGD(weight_decay=0.5)"
    plain = get_baseline("user_optimizers:SignSGD")
    decayed = params_after(spec, quadratic)[0]
    assert not torch.allclose(decayed, params_after(plain, quadratic)[0])
    by_hand = params_after(get_baseline(lambda p, lr: SignSGD(p, lr=lr, weight_decay=0.5)), quadratic)[0]
    assert torch.allclose(decayed, by_hand)


def test_classes_and_factories_are_accepted_wherever_a_name_is(quadratic):
    assert torch.allclose(params_after(get_baseline(torch.optim.Adam), quadratic)[0],
                          params_after(get_baseline("adam"), quadratic)[0])
    momentum = lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9)  # noqa: E731
    assert torch.allclose(params_after(get_baseline(momentum), quadratic)[0],
                          params_after(get_baseline("momentum"), quadratic)[0])
    specs = get_baselines(["adam", SignSGD, sign_sgd_factory, "lion_pytorch:Lion"])
    assert [s.name for s in specs] == ["adam", "SignSGD", "sign_sgd_factory", "lion_pytorch:Lion"]
    comparison = compare(specs, [quadratic], EvalProtocol(lrs=(0.01, 0.1), seeds=(0,), steps=8, extend_edges=0))
    assert set(comparison.optimizers) == {"adam", "SignSGD", "sign_sgd_factory", "lion_pytorch:Lion"}
    assert comparison.results[quadratic.name]["SignSGD"].best_score == pytest.approx(
        comparison.results[quadratic.name]["sign_sgd_factory"].best_score)


@pytest.mark.parametrize("spec, kwargs, match", [
    ("no_such_module_xyz:Opt", {}, "cannot import module 'no_such_module_xyz'"),
    ("torch.optim:Adamm", {}, "module 'torch.optim' has no attribute 'Adamm'"),
    ("collections:OrderedDict", {}, "is not a torch.optim.Optimizer subclass"),
    ("user_optimizers:NotAnOptimizer", {}, "is not a torch.optim.Optimizer subclass"),
    ("user_optimizers:NoLearningRate", {}, "has no 'lr' parameter"),
    ("user_optimizers:SignSGD", {"momentum": 0.9}, "unknown keyword 'momentum'"),
    ("user_optimizers:SignSGD", {"lr": 0.1}, "'lr' is tuned on the shared grid"),
    ("user_optimizers:SignSGD", {"weight_decay": "much"}, "a first step"),
    ("torch.optim:LBFGS", {}, "without a closure"),
    ("adam", {"betas": (0.9,)}, "building it at lr=1e-3"),
    ("lion", {"beta": 0.9}, "is a formula and takes no keywords"),
    ("not a spec:", {}, "expected 'module:Class'"),
    ("adamm", {}, "unknown baseline 'adamm'"),
])
def test_bad_specs_are_one_line_errors(spec, kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        get_baseline(spec, **kwargs)
    assert "\n" not in str(err.value)


def test_baseline_kwargs_syntax():
    parsed = parse_baseline_kwargs(['pytorch_optimizer:Lamb={"weight_decay": 0.01, "betas": [0.9, 0.95]}'])
    assert parsed == {"pytorch_optimizer:Lamb": {"weight_decay": 0.01, "betas": (0.9, 0.95)}}
    for bad, match in [("Lamb", "expected SPEC=JSON"), ("Lamb={weight_decay: 1}", "not JSON"),
                       ("Lamb=[1]", "give a JSON object")]:
        with pytest.raises(ConfigError, match=match):
            parse_baseline_kwargs([bad])
    with pytest.raises(ConfigError, match="not among the baselines"):
        get_baselines(["adam"], {"sgd": {"momentum": 0.5}})
    assert parse_baseline_list("none") == ([], [])
    assert parse_baseline_list("classic,x:Y")[0][-1] == "x:Y"


def test_user_optimizer_class_through_evaluate(tmp_path, capsys):
    out = tmp_path / "eval"
    main(["evaluate", "sign(m)", "--tasks", "quadratic_wellcond", "--out", str(out), "--baselines",
          "adam,user_optimizers:SignSGD,user_optimizers:sign_sgd_factory", "--baseline-kwargs",
          'user_optimizers:SignSGD={"weight_decay": 0.1}', *TINY])
    stdout = capsys.readouterr().out
    data = json.loads((out / "evaluation.json").read_text())
    names = set(data["tasks"]["quadratic_wellcond"]["results"])
    assert names == {"formula", "adam", "user_optimizers:SignSGD(weight_decay=0.1)", "user_optimizers:sign_sgd_factory"}
    assert data["candidates"] == ["formula"] and "formula" not in data["baselines"]
    best = data["tasks"]["quadratic_wellcond"]["best_baseline"]
    assert best in names - {"formula"}
    assert data["ratio_to_best_baseline"]["quadratic_wellcond"][best] == 1.0
    assert f"best baseline per task: quadratic_wellcond: {best}" in stdout
    assert "score / best baseline" in stdout


@pytest.mark.parametrize("argv, match", [
    (["--baselines", "adam,no_such_module_xyz:Opt"], "cannot import module"),
    (["--baselines", "adam,torch.optim:Adamm"], "has no attribute"),
    (["--baselines", "collections:OrderedDict"], "not a torch.optim.Optimizer subclass"),
    (["--baselines", "user_optimizers:NoLearningRate"], "no 'lr' parameter"),
    (["--baselines", "adam", "--baseline-kwargs", "adam={bad"], "not JSON"),
    (["--baselines", "adam", "--baseline-kwargs", 'sgd={"momentum": 0.5}'], "not among the baselines"),
    (["--baselines", "none", "--baseline-kwargs", 'sgd={"momentum": 0.5}'], "no baselines"),
    (["--tasks", "user_task_module:Unnamed"], "comes twice"),
    (["--tasks", "user_task_module:nothing"], "has no attribute"),
])
def test_bad_specs_on_the_command_line_are_one_line_and_exit_2(tmp_path, capsys, argv, match):
    with pytest.raises(SystemExit) as exit_info:
        main(["evaluate", "sign(m)", "--out", str(tmp_path / "e"), *TINY, *argv])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert match in err and len(err.strip().splitlines()) == 1
