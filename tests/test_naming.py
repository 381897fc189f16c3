"""Naming a found rule: equal to a published rule up to a positive scale, else the closest one."""

import pytest

from dsr_l2o.errors import ResultError
from dsr_l2o.export import read_result
from dsr_l2o.export.markdown import markdown_report
from dsr_l2o.formula import parse_formula
from dsr_l2o.naming import RuleName, name_rule, positive_scale, published_rules
from result_dir_factory import ADAM, make_result_dir


@pytest.mark.parametrize("rule", published_rules(), ids=lambda r: r.name)
def test_each_published_rule_is_named_as_itself(rule):
    named = name_rule(rule.at())
    assert named.equal_to == rule.name and named.closest_to is None
    assert named.reference == rule.reference and named.scale == pytest.approx(1.0)


def test_the_default_search_rule_is_soft_cautious_momentum():
    named = name_rule("m + 0.2 * sign(g) * abs(m)")
    assert named.equal_to == "soft cautious momentum" and named.coefficient == pytest.approx(0.2)
    assert named.text() == "equal to soft cautious momentum with c = 0.2 (Liang et al. 2024)"


def test_a_scaled_rule_is_equal_and_a_negated_one_is_not():
    named = name_rule("2 * m_hat / (sqrt(v_hat) + 1e-8)")
    assert named.equal_to == "Adam" and named.scale == pytest.approx(2.0)
    assert named.text() == "equal to Adam (Kingma & Ba 2015)"
    assert name_rule("-m").equal_to is None
    assert positive_scale(parse_formula("-m"), parse_formula("m")) is None


def test_a_scaled_coefficient_rule_finds_its_coefficient():
    named = name_rule("2.15 * m + 0.43 * sign(g) * abs(m)")
    assert named.equal_to == "soft cautious momentum" and named.coefficient == pytest.approx(0.2)
    assert named.scale == pytest.approx(2.15)


def test_rules_of_other_grammars_compare_by_operand_definitions():
    grammar = "name: mine\noperands: {g: grad, slow: {ema: g, beta: 0.99}}\nunary: [sign]\n"
    named = name_rule(parse_formula("sign(10 * slow + g)", grammar))
    assert named.equal_to == "Lion"
    assert name_rule("m_hat / (sqrt(v_hat) + 1e-8)").equal_to == "Adam"


def test_an_unrelated_rule_is_only_closest_with_a_correlation_below_one():
    named = name_rule("exp(g) * log(abs(w))")
    assert named.equal_to is None and named.closest_to is not None
    assert -1.0 <= named.correlation < 0.9
    assert named.text().startswith(f"closest to {named.name} (") and ", r = " in named.text()
    near = name_rule("m + 0.5 * sign(g) * abs(m_hat)")
    assert near.equal_to is None and 0.9 < near.correlation < 1.0
    assert near.closest_to == "soft cautious momentum"


def test_rule_name_round_trips_through_json():
    named = name_rule("sign(m) * abs(g)")
    assert RuleName.from_json(named.to_json()) == named
    with pytest.raises(ResultError, match="malformed"):
        RuleName.from_json({"equal_to": "Adam"})


def test_the_report_names_the_rule(tmp_path):
    bundle = read_result(make_result_dir(tmp_path / "adam_like", *ADAM, evaluate=False))
    report = markdown_report(bundle)
    assert "Among published rules it is equal to Adam (Kingma & Ba 2015): `m_tilde` up to a positive scale." in report


def test_a_rule_at_other_betas_is_named_with_its_betas():
    from dsr_l2o.grammar import load_grammar

    timescales = load_grammar("timescales")
    named = name_rule(parse_formula("m2_tilde", timescales))
    assert named.equal_to == "Adam" and named.betas == (0.95, 0.99)
    assert named.text() == "equal to Adam at betas (0.95, 0.99) (Kingma & Ba 2015)"
    assert RuleName.from_json(named.to_json()) == named
    mixed = name_rule(parse_formula("m2_hat / (sqrt(v_hat) + 1e-8)", timescales))
    assert mixed.equal_to == "Adam" and mixed.betas == (0.95, 0.999)
    assert name_rule("m_tilde").betas is None
    both = name_rule(parse_formula("m_tilde + m2_tilde", timescales))
    assert both.equal_to is None and both.closest_to == "Adam" and both.correlation < 1.0
