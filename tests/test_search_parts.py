"""Small parts of the search: settings validation, scale stripping, degenerate-rule guards."""

import pytest
import torch
import yaml

from dsr_l2o import load_grammar, parse_formula
from dsr_l2o.cli import main
from dsr_l2o.errors import ConfigError
from dsr_l2o.expr import to_text
from dsr_l2o.search.config import load_config
from dsr_l2o.search.guards import degenerate_reason, probe_operands
from dsr_l2o.search.select import unit_scale, unit_scaled
from dsr_l2o.tasks import get_task


@pytest.mark.parametrize("text, expected", [
    ("9.05 * m_tilde", "m_tilde"),
    ("m_tilde / 4", "m_tilde"),
    ("-(2 * m)", "-m"),
    ("sign(m + 0.1 * g)", "sign(m + 0.1 * g)"),
    ("3 * m + 6 * g", "m + 2 * g"),
])
def test_unit_scale_drops_only_a_global_positive_factor(text, expected):
    assert to_text(unit_scale(parse_formula(text).expr)) == expected


@pytest.mark.parametrize("text, expected, grammar", [
    ("m + m", "m", "grammars/sign_momentum.yaml"),  # a grammar without the constant 2
    ("sign(m) + sign(m)", "sign(m)", "grammars/sign_momentum.yaml"),
    ("m + 0.5 * m", "m", None),
    ("-(m + m)", "-m", None),
    ("m_tilde + m", "m_tilde + m", None),
    ("m + sign(m)", "m + sign(m)", None),
])
def test_a_factor_only_sympy_shows_is_dropped_too(text, expected, grammar):
    from dsr_l2o.simplify import simplify

    formula = simplify(parse_formula(text, load_grammar(grammar) if grammar else None))
    assert unit_scaled(formula, simplify).text == expected


@pytest.mark.parametrize("formula, reason", [
    ("2", "reads no operand"),
    ("-g", "not a descent direction"),
    ("g - g", "zero update"),
    ("m_hat / sqrt(v_hat)", None),
    ("sign(m)", None),
])
def test_guards_reject_degenerate_rules_with_a_reason(formula, reason):
    probes = probe_operands(parse_formula("g"), [get_task("quadratic_wellcond")], steps=5)
    found = degenerate_reason(parse_formula(formula), probes)
    assert (found is None) if reason is None else (reason in found)


@pytest.mark.parametrize("settings, message", [
    ({"horizon": 30, "unroll": 20}, "multiple of unroll"),
    ({"depth": 9}, "at most 4"),
    ({"relaxation": "magic"}, "sampled"),
    ({"meta_stepz": 3}, "unknown setting"),
    ({"meta_lr": -1}, "positive"),
    ({"validation_tasks": 3}, "validation_tasks: must be a list of task names"),
    ({"validation_tasks": "val_cnn"}, "validation_tasks: must be a list of task names"),
    ({"eval_seeds": 3}, "eval_seeds: must be a non-empty list"),
    ({"eval_steps": "many"}, "eval_steps: must be null"),
    ({"tasks": ["suite"]}, "tasks: must be the name of a task family"),
    ({"root_norm": "yes"}, "root_norm: must be true or false"),
    ({"init_bias": "big"}, "init_bias: must be a number"),
    ({"grammar": 5}, "grammar: must be"),
])
def test_bad_settings_are_one_line_errors(tmp_path, settings, message, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(settings))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--config", str(path), "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and str(path) in err[0]


def test_missing_checkpoint_for_resume_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "--out", str(tmp_path / "none"), "--resume"])
    assert exit_info.value.code == 2
    assert "no checkpoint.pt" in capsys.readouterr().err


def test_cuda_request_without_gpu_is_a_clear_error(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    from dsr_l2o.search.run import resolve_device

    with pytest.raises(ConfigError, match="no CUDA"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_default_settings_load_and_name_the_packaged_mars_grammar():
    config = load_config()
    assert config.grammar == "mars" and config.horizon % config.unroll == 0
    grammar, default = load_grammar(config.grammar), load_grammar(None)
    assert grammar.name == "mars" and default.name == "default"
    assert set(default.operands) < set(grammar.operands) and grammar.operands["c_norm"].kind == "norm"
