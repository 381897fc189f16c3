"""Build real search result directories for export/docs tests: a known formula, its grammar file,
a real (tiny) evaluation against tuned baselines and its real plots."""

from __future__ import annotations

import json
from pathlib import Path

from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import data_path, load_grammar
from dsr_l2o.result import Candidate, SearchResult, save_result

ADAM = ("m_hat / (sqrt(v_hat) + 1e-8)", "default.yaml")
LION = ("sign(m + 0.1*g)", "lion.yaml")


def make_result_dir(directory: Path, formula: str, grammar_file: str, evaluate: bool = True,
                    lr: float = 0.01) -> Path:
    """Write result.json, grammar.yaml and (with ``evaluate``) evaluation.json + plots/ into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    grammar = load_grammar(data_path("grammars", grammar_file))
    result = SearchResult(
        parse_formula(formula, grammar), lr, text=formula, raw_formula=f"({formula}) * 1",
        candidates=[Candidate(formula, lr=lr, score_ratio_to_adam=0.5),
                    Candidate("g", lr=0.1, score_ratio_to_adam=0.9, rejected="worse than sgd | tuned")],
        metrics={"meta_steps": 3, "final_meta_loss": -1.25, "skipped_steps": 0, "seconds": 4.5},
        created="2026-11-26T23:00:00Z", dsr_l2o_version="0.1.0",
        config={"meta_steps": 3, "tasks": ["quadratic_wellcond"], "unroll": {"length": 5, "horizon": 20}})
    save_result(result, directory)
    if evaluate:
        from dsr_l2o.evaluation import EvalProtocol, compare, formula_spec, get_baseline, save_plots
        from dsr_l2o.tasks import get_task

        specs = [formula_spec(formula, grammar, name="found"), get_baseline("adam"), get_baseline("sgd")]
        comparison = compare(specs, [get_task("quadratic_wellcond")],
                             EvalProtocol(lrs=(0.01, 0.1), seeds=(0,), steps=10))
        (directory / "evaluation.json").write_text(json.dumps(comparison.to_json()), encoding="utf-8")
        save_plots(comparison, directory / "plots", highlight="found")
    return directory
