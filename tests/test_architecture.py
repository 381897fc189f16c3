"""The layout's promises: one source of defaults, typed results that round-trip, one operand layout."""

import dataclasses
from pathlib import Path
import json

import yaml

import dsr_l2o

from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.layout import OperandLayout
from dsr_l2o.result import SCHEMA_VERSION, Candidate, DistillResult, SearchResult, Validation, load_result, save_result
from dsr_l2o.search.config import DEFAULTS_PATH, SearchConfig, load_config


def test_search_defaults_come_only_from_the_packaged_yaml():
    packaged = yaml.safe_load(DEFAULTS_PATH.read_text())
    assert {f.name for f in dataclasses.fields(SearchConfig)} == set(packaged)
    assert SearchConfig().to_dict() == packaged == load_config(None).to_dict()


def test_search_result_round_trips_through_result_json(tmp_path):
    formula = parse_formula("m + 0.2 * sign(g) * abs(m)")
    result = SearchResult(formula, 2.15, candidates=[Candidate("g", stage="relaxation", lr=0.5, scores={"a": 1.0})],
                          metrics={"meta_steps": 4}, config={"seed": 0}, stage="relaxation",
                          validation=Validation(["a"], {"seeds": [0]}, 0.8, {"a": 0.1}, {"a": 0.2}, {"a": 0.5}),
                          extra={"future_key": [1, 2]})
    save_result(result, tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["route"] == "search" and data["future_key"] == [1, 2]
    back = load_result(tmp_path)
    assert isinstance(back, SearchResult) and back.to_json() == result.to_json()
    assert back.validation.score_ratio_to_adam == 0.8 and back.candidates[0].scores == {"a": 1.0}
    assert back.latex == result.latex and back.complexity == formula.size


def test_distill_result_is_typed_by_its_route(tmp_path):
    result = DistillResult(parse_formula("m_tilde"), 0.01, teacher="adam", r2=0.999999, alpha=1.0)
    save_result(result, tmp_path)
    back = load_result(tmp_path)
    assert isinstance(back, DistillResult) and back.teacher == "adam" and back.r2 == 0.999999


def test_untrusted_fields_of_the_wrong_type_become_empty(tmp_path):
    save_result(SearchResult(parse_formula("g"), 0.1), tmp_path)
    data = json.loads((tmp_path / "result.json").read_text())
    data.update(lr="fast", candidates=[{"formula": 3}, "x", {"formula": "m", "lr": True}], validation=[1])
    (tmp_path / "result.json").write_text(json.dumps(data))
    back = load_result(tmp_path)
    assert back.lr is None and back.validation is None and [c.formula for c in back.candidates] == ["m"]
    assert back.candidates[0].lr is None


def test_layout_shares_one_buffer_per_definition():
    grammar = load_grammar()
    layout = OperandLayout(grammar, ["m_tilde", "m"])
    assert layout.order == ["g", "m", "m_hat", "v_hat", "m_tilde"]
    assert layout.state_keys == ["m", "v_hat"] and layout.buffer_of["m_hat"] == "m"
    assert layout.debiased == {"m_hat": 0.9, "v_hat": 0.999}
    assert layout.updates("m") and not layout.updates("m_hat")


def test_evaluation_json_is_typed_and_round_trips():
    from dsr_l2o.evaluation import EvalProtocol, compare, formula_spec, get_baseline
    from dsr_l2o.result import Evaluation
    from dsr_l2o.tasks import get_task

    comparison = compare([formula_spec("m", name="formula"), get_baseline("sgd")], [get_task("quadratic_wellcond")],
                         EvalProtocol(lrs=(0.01, 0.1), seeds=(0,), steps=8), candidates=("formula",))
    record = Evaluation.from_json(comparison.to_json("sgd"))
    assert record.candidates == ["formula"] and record.baselines == ["sgd"] and record.reference == "sgd"
    assert record.geomean_ratio_to_reference["sgd"] == 1.0
    again = Evaluation.from_json(json.loads(json.dumps(record.to_json())))
    assert again == record and again.to_json()["schema_version"] == SCHEMA_VERSION
    assert Evaluation.from_json({"tasks": [1], "candidates": "x", "future": 3}).tasks == {}


def test_only_the_cli_imports_the_cli():
    """Library modules never import the command line (it imports them): no cycle."""
    import ast

    package = Path(dsr_l2o.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        if "cli" in path.relative_to(package).parts or path.name == "__main__.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and (
                    node.module == "cli" or node.module.startswith("cli.") or node.module.startswith("dsr_l2o.cli")):
                offenders.append(str(path.relative_to(package)))
    assert not offenders, offenders
