"""Grammar files: every mistake is one line naming file, line, key and fix; valid grammars load."""

import textwrap

import pytest

from dsr_l2o.errors import GrammarError
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import default_grammar_path, grammar_path, load_grammar

BASE = """\
name: t
operands:
  g: grad
  m: {ema: g, beta: 0.9}
unary: [sign, sqrt]
binary: [add, mul]
constants: [1, 2]
"""


def grammar_error(tmp_path, text, filename="bad.yaml"):
    """Load ``text`` from a file and return the one-line GrammarError message."""
    path = tmp_path / filename
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(GrammarError) as info:
        load_grammar(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path) + ":"), message
    return message


# (yaml, line, key, words that must appear: what is wrong and the fix)
MISTAKES = {
    "unknown unary operator": (BASE.replace("[sign, sqrt]", "[sign, sqrtt]"), 5, "unary.1",
                               ["unknown operator 'sqrtt'", "did you mean 'sqrt'"]),
    "unknown operand in ema": (BASE.replace("ema: g", "ema: q"), 4, "operands.m.ema",
                               ["unknown name 'q'", "known operands: g, m"]),
    "binary listed under unary": (BASE.replace("[sign, sqrt]", "[sign, add]"), 5, "unary.1",
                                  ["'add' takes 2 argument(s)", "list it under binary"]),
    "unary listed under binary": (BASE.replace("[add, mul]", "[add, exp]"), 6, "binary.1",
                                  ["'exp' takes 1 argument(s)", "list it under unary"]),
    "call with wrong arg count": (BASE.replace("m: {ema: g, beta: 0.9}", "m: {expr: 'max(g)'}"), 4,
                                  "operands.m.expr", ["takes 2 argument(s), got 1", "write it as max(x, y)"]),
    "operand cycle": (BASE.replace("  m: {ema: g, beta: 0.9}\n",
                                   "  a: {expr: 'b * 2'}\n  b: {ema: a, beta: 0.5}\n"), 5, "operands.b",
                      ["cycle a -> b -> a", "define each from earlier ones only"]),
    "self cycle": (BASE.replace("ema: g", "ema: m"), 4, "operands.m", ["cycle m -> m"]),
    "custom operator cycle": (BASE + "operators:\n  f: {args: [x], expr: 'h(x) + 1'}\n"
                              "  h: {args: [x], expr: 'f(x) * 2'}\n", 10, "operators.h",
                              ["form a cycle", "define each from earlier ones only"]),
    "beta above 1": (BASE.replace("beta: 0.9", "beta: 1.5"), 4, "operands.m.beta",
                     ["strictly between 0 and 1", "e.g. 0.9"]),
    "beta zero": (BASE.replace("beta: 0.9", "beta: 0"), 4, "operands.m.beta", ["strictly between 0 and 1"]),
    "beta missing": (BASE.replace(", beta: 0.9", ""), 4, "operands.m.beta", ["is required"]),
    "beta text": (BASE.replace("beta: 0.9", "beta: high"), 4, "operands.m.beta", ["is required and must be a number"]),
    "beta on expr operand": (BASE.replace("ema: g", "expr: g"), 4, "operands.m.beta",
                             ["only applies to 'ema'", "remove it"]),
    "operand named like operator": (BASE.replace("  g: grad", "  exp: grad").replace("ema: g", "ema: exp"), 3,
                                    "operands.exp", ["also an operator name", "rename the operand"]),
    "custom operator named like operand": (BASE + "operators:\n  m: {args: [x], expr: 'x'}\n", 9,
                                           "operators.m", ["names an operand too", "rename one"]),
    "custom operator named like built-in": (BASE + "operators:\n  sqrt: {args: [x], expr: 'x'}\n", 9,
                                            "operators.sqrt", ["is a built-in operator", "another name"]),
    "custom argument named like operator": (BASE + "operators:\n  f: {args: [exp], expr: 'exp * 2'}\n", 9,
                                            "operators.f.args", ["'exp' is also an operator name"]),
    "duplicate in unary": (BASE.replace("[sign, sqrt]", "[sign, sqrt, sign]"), 5, "unary.2",
                           ["lists 'sign' twice", "remove the duplicate"]),
    "duplicate in binary": (BASE.replace("[add, mul]", "[mul, add, mul]"), 6, "binary.2", ["lists 'mul' twice"]),
    "duplicate constant": (BASE.replace("[1, 2]", "[1, 2, 1.0]"), 7, "constants.2",
                           ["lists the value 1 twice", "remove the duplicate"]),
    "duplicate operand key": (BASE.replace("  m: {ema: g, beta: 0.9}\n",
                                           "  m: {ema: g, beta: 0.9}\n  m: {ema: g, beta: 0.5}\n"), 5,
                              "operands.m", ["duplicate key (first given on line 4)", "remove or rename"]),
    "duplicate top-level key": (BASE + "unary: [abs]\n", 8, "unary", ["duplicate key (first given on line 5)"]),
    "duplicate key inside operand": (BASE.replace("beta: 0.9", "beta: 0.9, beta: 0.5"), 4, "operands.m.beta",
                                     ["duplicate key"]),
    "duplicate custom operator": (BASE + "operators:\n  f: {args: [x], expr: 'x'}\n  f: {args: [x], expr: '2*x'}\n",
                                  10, "operators.f", ["duplicate key (first given on line 9)"]),
    "unclosed flow mapping": (BASE.replace("m: {ema: g, beta: 0.9}", "m: {ema: g, beta: 0.9"), 5, "",
                              ["invalid YAML", "check indentation and quoting"]),
    "bad indentation": (BASE.replace("  m: {", " m: {"), 4, "", ["invalid YAML", "check indentation"]),
    "unknown top key": (BASE.replace("operands:", "oprands:") + "operands: {g: grad}\n", 2, "oprands",
                        ["unknown key", "did you mean 'operands'"]),
    "unknown operand key": (BASE.replace("beta: 0.9", "betta: 0.9"), 4, "operands.m.betta",
                            ["unknown key", "did you mean 'beta'"]),
    "unknown built-in kind": (BASE.replace("g: grad", "g: gradient"), 3, "operands.g",
                              ["unknown built-in 'gradient'", "did you mean 'grad'"]),
    "keyword operand": (BASE.replace("  g: grad", "  g: grad\n  lambda: {expr: 'g * 2'}"), 4, "operands.lambda",
                        ["Python keyword", "rename it, e.g. lambda_"]),
    "dunder operand": (BASE.replace("  g: grad", "  g: grad\n  __class__: param"), 4, "operands.__class__",
                       ["reserved"]),
    "yaml boolean key": (BASE.replace("  g: grad", "  g: grad\n  on: param"), 4, "operands.True",
                         ["YAML reads this name as true", "quote it"]),
    "missing operands": ("name: x\nunary: [sign]\n", 1, "operands", ["must be a non-empty mapping"]),
    "custom op missing expr": (BASE + "operators:\n  f: {args: [x]}\n", 9, "operators.f",
                               ["needs the key 'expr'"]),
    "custom op three args": (BASE + "operators:\n  f: {args: [x, y, z], expr: 'x'}\n", 9, "operators.f.args",
                             ["one or two argument names"]),
    "non-number constant": (BASE.replace("[1, 2]", "[1, two]"), 7, "constants.1", ["'two' is not a finite number"]),
    "top level is a list": ("- g\n- m\n", 1, "(top level)", ["must be a YAML mapping"]),
    "empty file": ("", 1, "(top level)", ["the grammar is empty", "operands: {g: grad}"]),
    "comments only": ("# nothing here\n", 1, "(top level)", ["the grammar is empty"]),
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_each_mistake_is_one_line_naming_file_line_key_and_fix(tmp_path, case):
    text, line, key, words = MISTAKES[case]
    message = grammar_error(tmp_path, text)
    prefix = f"{tmp_path / 'bad.yaml'}:{line}: {key}"
    assert message.startswith(prefix), f"{case}: {message}"
    for word in words:
        assert word in message, f"{case}: {word!r} not in {message!r}"


def test_syntax_error_names_the_key_on_its_line(tmp_path):
    message = grammar_error(tmp_path, BASE.replace("unary: [sign, sqrt]", "unary: [sign, sqrt"))
    assert "invalid YAML" in message and ": unary:" in message or ": binary:" in message


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes(BASE.replace("name: t", "name: caf\xe9").encode("latin-1"))
    with pytest.raises(GrammarError) as info:
        load_grammar(path)
    assert str(info.value) == f"{path}:1: name: byte 0xe9 is not UTF-8 text; save the grammar as UTF-8"


def test_control_character_is_one_line(tmp_path):
    message = grammar_error(tmp_path, BASE.replace("name: t", "name: t\x07"))
    assert message.startswith(f"{tmp_path / 'bad.yaml'}:1: name:") and "not allowed in YAML" in message


def test_directory_and_missing_file(tmp_path):
    with pytest.raises(GrammarError, match=r"is a directory; pass the path of a \.yaml grammar file"):
        load_grammar(tmp_path)
    with pytest.raises(GrammarError, match=r"no such grammar file \(also tried .*nope\.yaml\)"):
        load_grammar(tmp_path / "nope")
    with pytest.raises(GrammarError, match=r"no such grammar file;"):
        load_grammar(str(tmp_path / "nope.yaml"))


def test_aliases_are_rejected(tmp_path):
    text = BASE + "x: &a [1, 2]\n"
    message = grammar_error(tmp_path, BASE.replace("constants: [1, 2]", "constants: &c [1, 2]\nbinary2: *c"))
    assert "aliases" in message and "write the value out" in message
    assert "bad.yaml" in grammar_error(tmp_path, text)


def test_billion_laughs_is_rejected_fast(tmp_path):
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [*a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}, *a{i-1}]" for i in range(1, 30)]
    message = grammar_error(tmp_path, "\n".join(lines) + "\n")
    assert "aliases" in message


@pytest.mark.parametrize("text", ["operands: " + "[" * 90_000 + "]" * 9_000 + "\n",
                                  "operands: " + "{a: " * 40 + "1" + "}" * 40 + "\n"])
def test_deep_flow_nesting_is_rejected_before_the_quadratic_yaml_scanner(tmp_path, text):
    message = grammar_error(tmp_path, text)
    assert message.startswith(f"{tmp_path / 'bad.yaml'}:1: operands: YAML nests [ ] or {{ }} more than 32 levels")


def test_brackets_in_strings_and_comments_do_not_count():
    text = "operands: {g: grad}  # " + "[" * 50 + "\ndescription: '" + "[" * 50 + "'\n"
    assert load_grammar(text).description == "[" * 50


def test_deep_block_nesting_is_one_line(tmp_path):
    message = grammar_error(tmp_path, "operands:\n" + "- " * 1200 + "g\n")
    assert message.startswith(f"{tmp_path / 'bad.yaml'}:1: (top level): YAML nests too deeply")


@pytest.mark.parametrize("name", ["x" * 5000, "a\x00b", "a\x00b.yaml", "dir/" * 2000 + "g.yaml"])
def test_unusable_path_names_are_grammar_errors(name):
    with pytest.raises(GrammarError, match="no such grammar file"):
        load_grammar(name)


def test_oversized_file(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(BASE + "#" * 100_000 + "\n")
    with pytest.raises(GrammarError, match="larger than 100 kB"):
        load_grammar(path)


def test_valid_grammar_with_custom_operators_in_lists_and_formulas(tmp_path):
    text = BASE.replace("[sign, sqrt]", "[sign, sqrt, soft]").replace("[add, mul]", "[add, mul, blend]")
    text += ("operators:\n"
             "  blend: {args: [a, b], expr: 'soft(a) + 0.5 * b'}\n"
             "  soft: {args: [x], expr: 'x / (1 + abs(x))'}\n")
    path = tmp_path / "custom.yaml"
    path.write_text(text)
    grammar = load_grammar(path)
    assert grammar.unary == ("sign", "sqrt", "soft") and grammar.binary == ("add", "mul", "blend")
    assert list(grammar.custom) == ["soft", "blend"]
    formula = parse_formula("blend(g, m) - soft(m)", grammar)
    import torch

    g, m = torch.tensor([3.0, -1.0]), torch.tensor([1.0, 2.0])
    expected = g / (1 + g.abs()) + 0.5 * m - m / (1 + m.abs())
    assert torch.allclose(formula.evaluate({"g": g, "m": m}), expected)


def test_default_grammar_and_yaml_text_load():
    grammar = load_grammar()
    assert grammar.path == str(default_grammar_path())
    assert list(grammar.operands) == ["g", "w", "m", "v", "m_hat", "v_hat", "m_tilde", "g_tilde"]
    assert grammar.operands["v_hat"].nonnegative and not grammar.operands["m"].nonnegative
    assert grammar.operands["m_hat"].debias and grammar.operands["m"].beta == 0.9
    inline = load_grammar("operands: {g: grad, t: step}")
    assert inline.name == "custom" and inline.unary == () and inline.constants == ()


def test_operands_are_ordered_by_dependency_and_nulls_mean_empty():
    grammar = load_grammar("operands:\n  s: {expr: 'r * 2'}\n  r: {ema: g, beta: 0.5}\n  g: grad\n"
                           "unary:\nbinary:\nconstants:\noperators:\n")
    assert list(grammar.operands) == ["g", "r", "s"]
    assert grammar.dependencies(["s"]) == ["g", "r", "s"]
    assert (grammar.unary, grammar.binary, grammar.constants, grammar.custom) == ((), (), (), {})


def test_numeric_strings_are_numbers():
    grammar = load_grammar("operands:\n  g: grad\n  m: {ema: g, beta: 9e-1}\nconstants: [1e-8, 2]\n")
    assert grammar.operands["m"].beta == 0.9 and grammar.constants == (1e-8, 2.0)


def test_paths_without_suffix_and_shipped_names(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text(BASE)
    monkeypatch.chdir(tmp_path)
    assert grammar_path("mine").resolve() == (tmp_path / "mine.yaml").resolve()
    assert load_grammar("mine").name == "t"
    assert load_grammar("default").name == "default"
    assert load_grammar("default") == load_grammar()


def test_grammars_from_same_text_are_equal_and_hashable():
    a, b = load_grammar(), load_grammar()
    assert a == b and hash(a) == hash(b)
    assert parse_formula("m / sqrt(v)", a) == parse_formula("m / sqrt(v)", b)
    assert len({parse_formula("g"), parse_formula("g")}) == 1
    assert load_grammar("operands: {g: grad}") != a


def test_python_tags_in_yaml_text_are_rejected(tmp_path):
    target = tmp_path / "pwned"
    text = f"operands: !!python/object/apply:os.system ['touch {target}']\n"
    with pytest.raises(GrammarError, match=r"<text>:1: operands: YAML tag not allowed"):
        load_grammar(text)
    assert not target.exists()
