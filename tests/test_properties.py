"""Property tests (Hypothesis) over the parser, simplify, LaTeX and the grammar loader: every input
ends in a result or a one-line DsrError, within a time bound. Strategies: tests/strategies.py."""

import time

from hypothesis import HealthCheck, assume, given, settings

from dsr_l2o import expr as ex
from dsr_l2o.errors import DsrError, FormulaError, GrammarError
from dsr_l2o.formula import Formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.simplify import same_values, simplify
from strategies import DEFAULT, formula_texts, grammar_texts, trees

BOUNDED = settings(deadline=10_000, max_examples=60, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _one_line(err: Exception) -> None:
    message = str(err)
    assert "\n" not in message and len(message) < 500, message


@BOUNDED
@given(formula_texts())
def test_parser_gives_a_tree_or_a_one_line_error(text):
    start = time.perf_counter()
    try:
        tree = DEFAULT.parse(text)
    except FormulaError as err:
        _one_line(err)
        return
    assert DEFAULT.parse(ex.to_text(tree)) == tree
    assert time.perf_counter() - start < 2


@BOUNDED
@given(trees(max_leaves=8))
def test_latex_prints_every_operator_in_every_position(tree):
    try:
        formula = Formula(DEFAULT.parse(ex.to_text(tree)), DEFAULT)
    except FormulaError:
        assume(False)
    latex = formula.latex()
    assert isinstance(latex, str) and latex


@settings(deadline=20_000, max_examples=25, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(trees(max_leaves=6))
def test_simplify_is_never_larger_and_keeps_the_values(tree):
    try:
        formula = Formula(DEFAULT.parse(ex.to_text(tree)), DEFAULT)
    except FormulaError:
        assume(False)
    start = time.perf_counter()
    simple = simplify(formula)
    assert time.perf_counter() - start < 15
    assert simple.size <= formula.size
    assert simple == formula or same_values(formula, simple)
    simple.latex()


@BOUNDED
@given(grammar_texts())
def test_grammar_loader_gives_a_grammar_or_a_one_line_error(text):
    start = time.perf_counter()
    try:
        grammar = load_grammar(text)
    except GrammarError as err:
        _one_line(err)
        return
    assert time.perf_counter() - start < 2
    for name in grammar.operands:
        try:
            formula = Formula(grammar.parse(f"{name} * 2"), grammar)
        except DsrError as err:
            _one_line(err)
            continue
        formula.latex()
