"""Regression inputs of issue 15 for formulas: one-line errors or bounded work, never a traceback or a hang."""

import time
import warnings

import pytest
import sympy as sp

from dsr_l2o.errors import FormulaError
from dsr_l2o.formula import parse_formula
from dsr_l2o.limits import MAX_EXPANDED_NODES, MAX_EXPONENT
from dsr_l2o.simplify import simplify


def _nested(op: str, depth: int, leaf: str = "g") -> str:
    text = leaf
    for _ in range(depth):
        text = f"{op}({text})"
    return text


def _tower(base: str, times: int) -> str:
    return "(" * times + base + ")**8" * times


@pytest.mark.parametrize("text, latex", [
    ("exp(g)**2", r"\left(\exp\left(g\right)\right)^{2}"),
    ("log(g)**2", r"\left(\log\left|g\right|\right)^{2}"),
    ("(g/m)**2", r"\left(\frac{g}{m}\right)^{2}"),
    ("square(m / v)", r"\left(\frac{m}{v}\right)^{2}"),
    ("pow(g, m)**3", r"\left(\left|g\right|^{m}\right)^{3}"),
])
def test_powers_of_guarded_operators_print_in_latex(text, latex):
    formula = parse_formula(text)
    assert formula.latex() == latex
    assert simplify(formula).latex() == latex


def test_softsign_nested_16_deep_is_rejected_quickly():
    start = time.perf_counter()
    with pytest.raises(FormulaError, match=f"once custom operators expand, more than {MAX_EXPANDED_NODES}"):
        parse_formula(_nested("softsign", 16))
    assert time.perf_counter() - start < 1.0


def test_softsign_nested_within_the_limit_still_works():
    formula = parse_formula(_nested("softsign", 6))
    assert "softsign" in simplify(formula).text


@pytest.mark.parametrize("text", [
    "((((g**8)**8)**8)**8)**8",
    _tower("g", 22),
    "((((g + 1/3)**8)**8)**8)**8",
    _tower("10", 11),
    "square(square(square(square(square(square(square(g)))))))",
])
def test_towers_of_powers_are_one_line_errors(text):
    with pytest.raises(FormulaError, match=f"total power above {MAX_EXPONENT}") as info:
        parse_formula(text)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["10**8**8**8", "g**8**8**8**8", "pow(g, 1e9)"])
def test_huge_constant_exponents_are_one_line_errors(text):
    with pytest.raises(FormulaError, match="exponent .* of pow is larger than"):
        parse_formula(text)


@pytest.mark.parametrize("text", ["1e31 * g", "g + (10**8)**4", "exp(1e300) * g"])
def test_huge_constants_are_one_line_errors(text):
    with pytest.raises(FormulaError, match="larger than 1e\\+30"):
        parse_formula(text)


@pytest.mark.parametrize("text", ["(1e30*g)*1e30", "(1e16*g)**2", "g / 1e-20 / 1e-20", "softsign(1e20*g)*1e20"])
def test_constant_factors_that_sympy_folds_past_float32_are_errors(text):
    with pytest.raises(FormulaError, match="constant factors multiply to more than 1e\\+30"):
        parse_formula(text)


@pytest.mark.parametrize("text", ["tanh(min(tanh(m_tilde), (v_hat + min(pow(8, 1e-8), ((tanh(2))**9)**-1))))",
                                  "((1e-8 + exp(((2)**(1/3))**1.5)))**(1/3)", "exp(add((tanh(sign(0.5)))**(1/3), m))"])
def test_guarded_constants_compare_and_convert_in_sympy(text):
    """Found by benchmarks/fuzz.py: Min/Max of guarded constants raised 'not comparable'."""
    formula = parse_formula(text)
    assert formula.latex() and simplify(formula).size <= formula.size


@pytest.mark.parametrize("text", ["m_hat / (sqrt(v_hat) + 1e-8)", "g / (m + 1e-30)", "g * 1e-300 * 1e-300"])
def test_usual_epsilons_and_tiny_factors_are_fine(text):
    assert parse_formula(text).size >= 5


@pytest.mark.parametrize("text, where", [
    ("9" * 5000, "number"),
    ("g + " + "x" * 10_000 + "q", "name"),
    ("g + " + "1" * 400 + " * g", "number"),
    ("g " + "y" * 6000, "unexpected"),
])
def test_rejected_numbers_and_names_are_shortened_in_messages(text, where):
    with pytest.raises(FormulaError) as info:
        parse_formula(text[:10_000])
    message = str(info.value)
    assert where in message and len(message) < 400 and "characters)" in message


def test_simplify_gives_up_within_its_budget_and_keeps_the_formula(monkeypatch):
    import dsr_l2o.simplify as simplify_module
    from dsr_l2o.budget import within_budget

    # The mechanism at a budget of 0.5 s; the default budget (SYMBOLIC_SECONDS) only waits longer.
    monkeypatch.setattr(simplify_module, "within_budget", lambda *args: within_budget(*args, seconds=0.5))
    formula = parse_formula("((g + m + v + 1/3)**8)**8")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = simplify(formula)
    assert time.perf_counter() - start < 5
    assert out == formula
    assert any("took longer than 0.5 s" in str(w.message) for w in caught)


def test_time_budget_nests_and_restores_the_alarm():
    import signal

    from dsr_l2o.budget import BudgetExceeded, time_budget

    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(BudgetExceeded):
        with time_budget(5):
            with time_budget(0.05):
                while True:
                    sp.Integer(3) ** 5
    assert signal.getsignal(signal.SIGALRM) == before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_time_budget_leaves_a_running_program_timer_alone():
    import signal

    from dsr_l2o.budget import time_budget

    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *_: fired.append(True))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with time_budget(0.01):
            sp.Integer(3) ** 5
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
        time.sleep(0.4)
        assert fired
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
