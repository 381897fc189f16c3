"""Distillation: a teacher optimizer's updates -> a formula that steps like it."""


import pytest
import torch

from dsr_l2o import expr as ex
from dsr_l2o.distill import distil, record
from dsr_l2o.distill.fit import FitCandidate, rank, refit_constants
from dsr_l2o.evaluation import get_baseline
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import default_grammar_path, load_grammar
from dsr_l2o.optimizer import SymbolicOptimizer
from dsr_l2o.result import load_result
from dsr_l2o.search.relaxation import RelaxedRule
from dsr_l2o.tasks import get_family

SMALL = dict(episodes=3, steps=30, iterations=120, top_k=6)


@pytest.fixture(scope="module")
def grammar():
    return load_grammar(default_grammar_path())


@pytest.fixture(scope="module")
def adam_result(tmp_path_factory):
    return distil("adam", out=tmp_path_factory.mktemp("adam") / "out", **SMALL)


def _steps(make, steps=25):
    torch.manual_seed(3)
    target = torch.randn(40, dtype=torch.float64)
    w = torch.zeros(40, dtype=torch.float64, requires_grad=True)
    optimizer = make([w])
    for _ in range(steps):
        optimizer.zero_grad()
        ((w - target) ** 4).sum().backward()
        optimizer.step()
    return w.detach()


def test_adam_is_distilled_into_m_tilde_that_steps_like_adam(adam_result):
    assert adam_result.formula.text == "m_tilde"
    assert adam_result.data["r2"] > 0.9999 and adam_result.data["route"] == "distil"
    assert adam_result.lr == pytest.approx(1e-2, rel=1e-3)
    ours = _steps(lambda p: adam_result.optimizer(p))
    theirs = _steps(lambda p: torch.optim.Adam(p, lr=1e-2))
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("teacher, formulas, lr_factor", [
    ("sgd", {"g"}, 1.0), ("momentum", {"m"}, 10.0),
    ("sign(m)", {"sign(m)", "sign(m_hat)", "sign(m_tilde)"}, 1.0),  # the same rule: m_tilde = m * (> 0)
])
def test_teachers_come_back_as_their_own_rule_with_the_right_step(tmp_path, teacher, formulas, lr_factor):
    result = distil(teacher, out=tmp_path / "out", lr=0.01, **SMALL)
    assert result.formula.text in formulas and result.data["r2"] > 0.999
    assert result.lr == pytest.approx(0.01 * lr_factor, rel=1e-3)
    assert load_result(tmp_path / "out").formula.text == result.formula.text


def test_least_squares_recovers_a_constant_and_scale_is_closed_form(grammar):
    names = RelaxedRule(grammar, depth=1).operand_names
    teacher = get_baseline("sgd").__class__("t", lambda p, lr: SymbolicOptimizer(p, "3 * (m + 0.3 * g)", lr=lr))
    trace = record(teacher, get_family("quadratics"), grammar, names, episodes=2, steps=20)
    fitted = refit_constants(parse_formula("m + 1 * g", grammar), trace)
    (constant,) = [n.value for n in ex.numbers(fitted.formula.expr)]
    assert constant == pytest.approx(0.3, rel=1e-3) and fitted.alpha == pytest.approx(3.0, rel=1e-3)
    assert fitted.r2 > 0.99999
    wrong = refit_constants(parse_formula("sign(g)", grammar), trace)
    assert wrong.r2 < fitted.r2 - 0.01


def test_rank_prefers_the_simplest_formula_within_tolerance(grammar):
    def cand(text, r2):
        return FitCandidate(parse_formula(text, grammar), text, 1.0, r2)

    ranked = rank([cand("m + 0.01 * g", 0.999), cand("m", 0.995), cand("g", 0.5), cand("sign(g)", 0.9)])
    assert [c.formula.text for c in ranked] == ["m", "m + 0.01 * g", "sign(g)", "g"]
    assert rank([]) == []


def test_result_exports_like_a_search(adam_result, tmp_path):
    from dsr_l2o.export.markdown import markdown_report
    from dsr_l2o.export.bundle import read_result

    page = markdown_report(read_result(adam_result.directory))
    assert page.startswith("# Distillation") and "R²" in page and "m_tilde" in page


def test_cli_distils_and_reports_bad_input_in_one_line(tmp_path):
    from test_cli_grammar import run

    code, out, err = run("distil", "sgd", "--episodes", "2", "--steps", "20", "--iterations", "80",
                         "--out", str(tmp_path / "d"), "--quiet")
    assert code == 0 and "formula:  g" in out and (tmp_path / "d" / "result.json").is_file()
    code, _, err = run("distil", "sgd", "--out", str(tmp_path / "d"))
    assert code == 2 and "already holds a result" in err and len(err.strip().splitlines()) == 1
    code, _, err = run("distil", "adamm", "--out", str(tmp_path / "e"))
    assert code == 2 and "neither a baseline" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "e").exists()
    code, _, err = run("distil", "sgd", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "f"))
    assert code == 2 and "missing.yaml" in err and len(err.strip().splitlines()) == 1
