"""Exact recovery of composite rules, the missing-operand suggestion and teacher specs."""

import pytest
import torch

from dsr_l2o import expr as ex
from dsr_l2o.distill import distil, record, search
from dsr_l2o.distill.enumerate import Library
from dsr_l2o.distill.missing import candidate_operands, suggest, with_operands
from dsr_l2o.distill.teacher import teacher_spec
from dsr_l2o.errors import ConfigError
from dsr_l2o.grammar import load_grammar
from dsr_l2o.search.relaxation import RelaxedRule
from dsr_l2o.tasks import get_family

SMALL = dict(episodes=3, steps=30, heldout=1)


@pytest.fixture(scope="module")
def grammar():
    return load_grammar(None)


@pytest.fixture(scope="module")
def names(grammar):
    return RelaxedRule(grammar, depth=1).operand_names


def _trace(teacher, grammar, names, family="mixed", extra=()):
    recorded = with_operands(grammar, list(extra)) if extra else grammar
    return record(teacher_spec(teacher, grammar), get_family(family), recorded, names + [o.name for o in extra],
                  episodes=3, steps=30)


@pytest.mark.parametrize("teacher, expected", [
    ("powersign", {"g * exp(sign(g * m))", "exp(sign(g * m)) * g"}),
    ("sign(m + 0.1 * g)", {"sign(m + 0.1 * g)"}),
    ("m + sign(g) * abs(m)", {"sign(g) * abs(m) + m", "m + sign(g) * abs(m)", "abs(m) * (sign(g) + sign(m))"}),
])
def test_composite_rules_are_recovered_exactly_on_held_out_episodes(grammar, names, teacher, expected):
    fit, held = _trace(teacher, grammar, names).split(1)
    best = search(fit, held, grammar, names)[0]
    assert best.formula.text in expected
    assert best.exact and best.heldout_error < 1e-9 and best.alpha > 0


def test_a_simpler_formula_with_lower_r2_does_not_win(grammar, names):
    fit, held = _trace("addsign", grammar, names).split(1)
    candidates = search(fit, held, grammar, names)
    assert candidates[0].exact and candidates[0].formula.text != "g"
    plain_g = [c for c in candidates if c.formula.text == "g"]
    assert not plain_g or not plain_g[0].exact


def test_rmsprop_names_the_moving_average_the_grammar_lacks(grammar, names):
    extra = candidate_operands(grammar)
    assert all(o.name not in grammar.operands for o in extra) and len(extra) >= 8
    extra = [o for o in extra if o.name.startswith("v")]  # the squared-gradient averages, to keep this fast
    trace = _trace("rmsprop", grammar, names, extra=extra)
    fit, held = trace.split(1)
    assert not search(fit, held, grammar, names)[0].exact
    suggestion = suggest(fit, held, grammar, names, extra)
    assert suggestion.line == 'v99: {ema: "g**2", beta: 0.99}'
    assert suggestion.exact and "v99" in suggestion.formula


def test_library_respects_units_guards_and_value_dedupe(grammar, names):
    torch.manual_seed(0)
    probes = {n: torch.randn(64, dtype=torch.float64) for n in names}
    for n in ("v", "v_hat"):
        probes[n] = probes[n].abs()
    probes["w"][0] = 0.0
    library = Library(grammar, probes, names, max_size=4)
    texts = {ex.to_text(library.expr(i)) for i in range(len(library))}
    assert "g + v" not in texts and "v + g" not in texts and "exp(g)" not in texts  # units
    assert "g / w" not in texts  # w is 0 on a probe row where g is not: the guard would fire
    assert "g + g" not in texts and "g * 2" not in texts and "2 * g" not in texts  # same values as g up to scale
    assert "g / sqrt(v)" in texts and "exp(m_tilde)" in texts


def test_module_class_teacher_with_keyword_arguments(tmp_path):
    result = distil("torch.optim:SGD", out=tmp_path / "out", teacher_kwargs={"momentum": 0.9}, **SMALL)
    assert result.formula.text == "m" and result.data["exact"]
    assert result.lr == pytest.approx(0.1, rel=1e-6)
    assert "momentum=0.9" in result.data["teacher"]


def test_bad_teacher_specs_are_one_line_errors(grammar):
    with pytest.raises(ConfigError, match="cannot import"):
        teacher_spec("no_such_module_xyz:Opt", grammar)
    with pytest.raises(ConfigError, match="must take"):
        teacher_spec("math:sqrt", grammar)
    with pytest.raises(ConfigError, match="unknown keyword 'bogus'"):
        teacher_spec("torch.optim:SGD", grammar, {"bogus": 1})
    with pytest.raises(ConfigError, match="takes no keyword"):
        teacher_spec("adam", grammar, {"lr": 1})


def test_sign_constants_are_the_shortest_decimal_in_the_feasible_interval():
    from dsr_l2o.distill.stages import shortest_in, sign_interval

    assert shortest_in(0.0987, 0.1003) == 0.1
    assert shortest_in(0.11108, 0.11113) == 0.1111
    assert shortest_in(0.3, 0.2) is None
    x = torch.tensor([[1.0, -2.0, 0.5]])
    z = torch.tensor([[-10.0, 10.0, 1.0]])
    lo, hi = sign_interval(x, z, torch.sign(x + 0.1 * z)[0])  # c = 0.1 reproduces these signs
    assert float(lo) < 0.1 < float(hi)


def test_held_out_rows_are_whole_episodes(grammar, names):
    trace = _trace("sgd", grammar, names)
    fit, held = trace.split(1)
    assert len(fit) + len(held) == len(trace) and held.episodes == 1
    assert set(held.episode.tolist()).isdisjoint(set(fit.episode.tolist()))
