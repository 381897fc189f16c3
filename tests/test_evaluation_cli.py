"""``dsr-l2o evaluate``: end to end on tiny budgets, and one-line errors for bad input."""

import json
import shutil

import pytest

from dsr_l2o.cli import main
from dsr_l2o.grammar import data_path

TINY = ["--tasks", "quadratic_wellcond", "--seeds", "1", "--lrs", "0.01,0.1,1", "--steps", "15"]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_evaluate_formula_writes_json_plots_and_table(tmp_path, capsys):
    out = tmp_path / "eval"
    main(["evaluate", "m_hat / (sqrt(v_hat) + 1e-8)", "--baselines", "adam,sgd,lion",
          "--out", str(out), *TINY])
    stdout = capsys.readouterr().out
    data = json.loads((out / "evaluation.json").read_text())
    results = data["tasks"]["quadratic_wellcond"]["results"]
    assert set(results) == {"formula", "adam", "sgd", "lion"}
    assert data["protocol"]["lrs"] == [0.01, 0.1, 1.0] and data["protocol"]["steps"] == 15
    assert results["formula"]["formula"] == "m_hat / (sqrt(v_hat) + 1e-08)"
    # the formula is Adam, so it tunes to the same lr and (nearly) the same score
    assert results["formula"]["best_lr"] == results["adam"]["best_lr"]
    assert results["formula"]["best_score"] == pytest.approx(results["adam"]["best_score"], rel=1e-3)
    assert data["ratio_to_reference"]["quadratic_wellcond"]["adam"] == 1.0
    assert (out / "plots" / "loss_quadratic_wellcond.png").read_bytes()[:8] == PNG_MAGIC
    assert "quadratic_wellcond: formula rank" in stdout and "best lr" in stdout


def test_evaluate_result_directory_reads_formula_and_grammar(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(data_path("grammars", "lion.yaml"), run / "grammar.yaml")
    (run / "result.json").write_text(json.dumps({"formula": "sign(m + 0.1 * g)", "lr": 0.001}))
    main(["evaluate", str(run), "--baselines", "lion", *TINY])
    data = json.loads((run / "evaluation.json").read_text())
    assert data["formula"]["grammar"] == "lion"
    results = data["tasks"]["quadratic_wellcond"]["results"]
    # same rule, same grammar (m with beta 0.99): identical to the Lion baseline
    assert results["formula"]["scores_by_lr"] == results["lion"]["scores_by_lr"]
    assert (run / "plots" / "loss_quadratic_wellcond.png").is_file()


def _one_line_error(capsys, argv, match):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and match in err[0], err
    return err[0]


@pytest.mark.parametrize("argv, match", [
    (["g", "--baselines", "adam,adamm"], "unknown baseline 'adamm'"),
    (["g", "--tasks", "no_such_task"], "unknown task 'no_such_task'"),
    (["sqrt(g", "--tasks", "quadratic_wellcond"], "neither a result directory nor a valid formula"),
    (["g", "--lrs", "0.1,abc"], "--lrs"),
    (["g", "--lrs", "0.1,-1"], "positive"),
    (["g", "--grammar", "missing.yaml"], "no such grammar file"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, argv, match):
    _one_line_error(capsys, ["evaluate", *argv, "--out", str(tmp_path / "o")], match)
    assert not (tmp_path / "o").exists()


def test_formula_without_out_is_an_error(capsys):
    _one_line_error(capsys, ["evaluate", "sign(m)"], "--out DIR is required")


def test_result_directory_without_result_json_is_an_error(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    _one_line_error(capsys, ["evaluate", str(tmp_path / "run")], "result.json: missing")


def test_result_directory_with_broken_result_json_is_an_error(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "result.json").write_text("{not json")
    _one_line_error(capsys, ["evaluate", str(run)], "not valid JSON")
    (run / "result.json").write_text(json.dumps({"formula": "m + v"}))
    (run / "grammar.yaml").write_text((data_path("grammars", "lion.yaml")).read_text())
    _one_line_error(capsys, ["evaluate", str(run)], "does not parse")


def _stored_baselines(path, tamper=None) -> tuple[str, dict]:
    """Adam and SGD tuned under TINY's protocol, in the shape benchmarks/baselines.py writes."""
    from dsr_l2o.evaluation import EvalProtocol, compare
    from dsr_l2o.tasks import get_task

    protocol = EvalProtocol(lrs=(0.01, 0.1, 1.0), seeds=(0,), steps=15)
    comparison = compare(["adam", "sgd"], [get_task("quadratic_wellcond")], protocol)
    results = {t: {n: r.to_json() for n, r in per.items()} for t, per in comparison.results.items()}
    if tamper:
        tamper(results)
    path.write_text(json.dumps({"protocol": protocol.to_json(), "results": results}))
    return str(path), results


def test_stored_baseline_results_are_read_not_retuned(tmp_path, capsys):
    def tamper(results):
        results["quadratic_wellcond"]["sgd"]["best_score"] = 123.0  # proves it is read, not retuned

    stored, results = _stored_baselines(tmp_path / "baselines.json", tamper)
    out = tmp_path / "eval"
    main(["evaluate", "m_tilde", "--baselines", "adam,sgd", "--out", str(out), *TINY, "--baseline-results", stored])
    again = json.loads((out / "evaluation.json").read_text())["tasks"]["quadratic_wellcond"]["results"]
    assert again["sgd"]["best_score"] == 123.0
    assert again["adam"]["best_score"] == results["quadratic_wellcond"]["adam"]["best_score"]
    assert again["formula"]["formula"] == "m_tilde"
    capsys.readouterr()
    _one_line_error(capsys, ["evaluate", "m_tilde", "--baselines", "adam", "--out", str(tmp_path / "x"), *TINY[:-1],
                             "20", "--baseline-results", stored], "tuned under another protocol")
    bad = json.loads((tmp_path / "baselines.json").read_text())
    bad["results"]["quadratic_wellcond"]["adam"] = 3
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    _one_line_error(capsys, ["evaluate", "m_tilde", "--baselines", "adam", "--out", str(tmp_path / "y"), *TINY,
                             "--baseline-results", str(tmp_path / "bad.json")], "adam: not a tuned result")


def test_task_sets_name_the_suite_splits():
    from dsr_l2o.tasks import get_tasks
    from dsr_l2o.tasks.suite import SUITE_TEST, SUITE_VALIDATION

    assert [t.name for t in get_tasks(["suite_test"])] == list(SUITE_TEST)
    assert [t.name for t in get_tasks(["suite_validation", "quadratic_wellcond"])] == [*SUITE_VALIDATION, "quadratic_wellcond"]


def test_evaluate_reports_on_held_out_tasks_and_says_when_they_are_not(tmp_path, capsys):
    from dsr_l2o.evaluation.protocol import DEFAULT_TASKS
    from dsr_l2o.tasks import get_tasks
    from dsr_l2o.tasks.suite import SUITE_TEST, SUITE_VALIDATION

    assert [t.name for t in get_tasks([DEFAULT_TASKS], 1)] == list(SUITE_TEST)
    assert not set(SUITE_TEST) & set(SUITE_VALIDATION)
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(data_path("grammars", "default.yaml"), run / "grammar.yaml")
    (run / "result.json").write_text(json.dumps({"formula": "m_tilde", "lr": 0.01}))
    (run / "config.yaml").write_text("validation_tasks: [quadratic_wellcond, noisy_quadratic]\n")
    main(["evaluate", str(run), "--baselines", "none", *TINY])
    assert "note: quadratic_wellcond: the search selected its formula on this task" in capsys.readouterr().err
    (run / "config.yaml").write_text("validation_tasks: [val_cnn]\n")
    main(["evaluate", str(run), "--baselines", "none", *TINY])
    assert "note:" not in capsys.readouterr().err
    (run / "config.yaml").write_text("tasks: quadratics\n")
    main(["evaluate", str(run), "--baselines", "none", *TINY[2:], "--tasks", "quadratics", "--family-samples", "1"])
    assert "note: quadratics: the search meta-trained on this family" in capsys.readouterr().err


def test_a_long_formula_is_a_formula_and_an_odd_config_only_silences_the_note(tmp_path, capsys):
    from dsr_l2o.evaluation.run import search_tasks

    long_formula = " + ".join(["m_tilde"] * 40)
    main(["evaluate", long_formula, "--baselines", "none", "--out", str(tmp_path / "long"), *TINY])
    assert (tmp_path / "long" / "evaluation.json").is_file()
    run = tmp_path / "run"
    run.mkdir()
    for text in ("- a list\n", "validation_tasks: " + "[" * 3000 + "]" * 3000 + "\n", "validation_tasks: 3\n"):
        (run / "config.yaml").write_text(text)
        assert search_tasks(run) == (set(), None)
    (run / "config.yaml").write_bytes(b"\xff\xfe")
    assert search_tasks(run) == search_tasks(None) == (set(), None)
    (run / "config.yaml").write_text("validation_tasks: []\ntasks: mixed\n")
    names, family = search_tasks(run)
    assert "quadratic_illcond" in names and family == "mixed"  # the search falls back to the built-in set
