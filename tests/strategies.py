"""Hypothesis strategies shared by the property tests: formula trees and texts, grammar files."""

from __future__ import annotations

from hypothesis import strategies as st

from dsr_l2o import expr as ex
from dsr_l2o.grammar import load_grammar

DEFAULT = load_grammar(None)
UNARY = sorted(n for n, op in DEFAULT.operators.items() if op.arity == 1)
BINARY = sorted(n for n, op in DEFAULT.operators.items() if op.arity == 2)
NICE_NUMBERS = st.sampled_from([0.0, 1.0, 2.0, 0.5, 1e-8, 3.7, -1.5, 10.0])
ANY_NUMBERS = st.one_of(NICE_NUMBERS, st.floats(allow_nan=False, allow_infinity=False))


def trees(grammar=DEFAULT, numbers=NICE_NUMBERS, max_leaves: int = 10):
    """Expression trees over ``grammar``'s operands and every operator it knows (custom ones too),
    with exact powers 1..8 anywhere, including on guarded operators."""
    names = sorted(grammar.operands)
    unary = sorted(n for n, op in grammar.operators.items() if op.arity == 1)
    binary = sorted(n for n, op in grammar.operators.items() if op.arity == 2)
    leaves = st.one_of(st.sampled_from(names).map(ex.Var), numbers.map(ex.Num))

    def grow(children):
        return st.one_of(
            st.builds(lambda op, a: ex.Call(op, (a,)), st.sampled_from(unary), children),
            st.builds(lambda op, a, b: ex.Call(op, (a, b)), st.sampled_from(binary), children, children),
            st.builds(ex.Power, children, st.integers(1, 8)),
        )

    return st.recursive(leaves, grow, max_leaves=max_leaves)


def formula_texts():
    """Text a user might paste: printed trees, their mutations and arbitrary characters."""
    printed = trees(numbers=ANY_NUMBERS).map(ex.to_text)
    alphabet = "gmvwt_hat()+-*/,. 0123456789e*sqrtexplogsoftsignpow"
    mutated = st.tuples(printed, st.text(alphabet=alphabet, max_size=6), st.integers(0, 200)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:])
    return st.one_of(printed, mutated, st.text(alphabet=alphabet, max_size=80), st.text(max_size=40))


_GOOD_NAMES = ["g", "m", "v", "w", "t", "float", "len", "x_1", "lr", "s", "k", "sum"]
_NAMES = st.sampled_from(_GOOD_NAMES * 3 + ["on", "1x", "__x", "class", "é"])
_GOOD_NUMBERS = ["0.9", "0.999", "0.5", "0.1"]
_NUMBER_TEXT = st.one_of(st.sampled_from(_GOOD_NUMBERS), st.sampled_from(_GOOD_NUMBERS), st.sampled_from(_GOOD_NUMBERS * 6 + ["1", "2", "1e-8", "1.5", "-1", ".inf", "nan",
                                                              "0x1f", "1e400", "'a'", "[1]", "{}", "null"]),
                         st.integers(1, 500).map(lambda n: "9" * n))


@st.composite
def grammar_texts(draw):
    """Grammar files: mostly well-formed, with bad names, numbers, operators and custom operators mixed in."""
    names = draw(st.lists(_NAMES, min_size=1, max_size=5, unique=True))
    lines = ["operands:", f"  {names[0]}: {draw(st.sampled_from(['grad'] * 4 + ['param', 'step', 'bogus']))}"]
    for i, name in enumerate(names[1:], 1):
        source = draw(st.sampled_from(names[:i]))
        kind = draw(st.sampled_from(["ema", "expr", "ema2", "builtin"]))
        beta = draw(_NUMBER_TEXT)
        if kind == "ema":
            lines.append(f"  {name}: {{ema: {source}, beta: {beta}}}")
        elif kind == "ema2":
            lines.append(f"  {name}: {{ema: '{source}**2', beta: {beta}, debias: true}}")
        elif kind == "expr":
            body = draw(st.sampled_from([f"{source} / (1 + abs({source}))", f"sqrt({source})", f"{source}**8**8",
                                         beta, f"{source} * {beta}"]))
            lines.append(f"  {name}: {{expr: \"{body}\"}}")
        else:
            lines.append(f"  {name}: {draw(st.sampled_from(['grad', 'param', 'step']))}")
    if draw(st.booleans()):
        lines.append("unary: [" + ", ".join(draw(st.lists(st.sampled_from(UNARY * 3 + ["bogus", "add"]), max_size=4))) + "]")
    if draw(st.booleans()):
        lines.append("constants: [" + ", ".join(draw(st.lists(_NUMBER_TEXT, max_size=4))) + "]")
    if draw(st.booleans()):
        depth = draw(st.integers(1, 12))
        body = draw(st.sampled_from(["op{p}(op{p}(x))", "op{p}(x) + op{p}(x)", "op{p}(x) * 2", "square(op{p}(x))"]))
        lines += ["operators:", "  op0: {args: [x], expr: 'x / (1 + abs(x))'}"]
        lines += [f"  op{i}: {{args: [x], expr: '{body.format(p=i - 1)}'}}" for i in range(1, depth)]
    text = "\n".join(lines) + "\n"
    cut = draw(st.integers(0, 3 * len(text)))
    return text if cut >= len(text) else text[:cut] + draw(st.text(max_size=3)) + text[cut:]
