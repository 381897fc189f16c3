"""Untrusted formulas and grammar files cannot run code; the package never evaluates text."""

import io
import re
import tokenize
from pathlib import Path

import pytest

from dsr_l2o.errors import FormulaError, GrammarError
from dsr_l2o.formula import parse_formula
from dsr_l2o.grammar import load_grammar

PACKAGE = Path(__file__).resolve().parent.parent / "dsr_l2o"

HOSTILE_FORMULAS = [
    "__import__('os').system('touch X')",
    "__import__(\"os\").system(\"touch X\")",
    "g.__class__",
    "g.__class__.__bases__[0].__subclasses__()",
    "lambda x: x",
    "g; import os",
    "import os",
    'eval("1")',
    "exec('open(\"X\", \"w\")')",
    "open('X', 'w')",
    "[x for x in ()]",
    "{}",
    "g if g else m",
    "'g'",
    '"g"',
    "g\n__import__('os')",
    "g # comment",
    "ｇ + m",  # fullwidth g
    "\u0261 + m",  # latin script g
    "m\u0430",  # cyrillic a
    "\u0663 * g",  # arabic-indic digit three
    "g\u00a0+ m",  # no-break space
    "g\u2028+ m",  # line separator
    "g\x00",
    "sqrt(g) @ m",
    "g ** ** m",
    "os.system",
    "(" * 100_000,
    "sqrt(" * 3000 + "g" + ")" * 3000,
    "-" * 50_000 + "g",
]


@pytest.mark.parametrize("index", range(len(HOSTILE_FORMULAS)))
def test_hostile_formulas_are_rejected_without_side_effects(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FormulaError) as info:
        parse_formula(HOSTILE_FORMULAS[index])
    assert "\n" not in str(info.value) and len(str(info.value)) < 500
    assert not (tmp_path / "X").exists()
    assert list(tmp_path.iterdir()) == []


def test_non_string_formula():
    with pytest.raises(FormulaError, match="must be a string"):
        parse_formula(b"g")


HOSTILE_YAML = [
    "operands: !!python/object/apply:os.system ['touch {target}']\n",
    "operands: {{g: grad}}\nname: !!python/object/apply:os.system ['touch {target}']\n",
    "operands: {{g: grad}}\ndescription: !!python/name:os.system\n",
    "operands: {{g: grad}}\ndescription: !!python/module:os\n",
    "operands: {{g: grad}}\ndescription: !!python/object/new:os.system ['touch {target}']\n",
    "operands: {{g: grad}}\ndescription: !!python/object:collections.OrderedDict {{}}\n",
    "operands: {{g: grad}}\nconstants: !!python/tuple [1, 2]\n",
    "operands:\n  g: !!python/object/apply:subprocess.call [['touch', '{target}']]\n",
    "operands: {{g: grad}}\ndescription: !custom 1\n",
]


@pytest.mark.parametrize("index", range(len(HOSTILE_YAML)))
def test_python_yaml_tags_are_one_line_errors_without_side_effects(index, tmp_path):
    target = tmp_path / "X"
    path = tmp_path / "evil.yaml"
    path.write_text(HOSTILE_YAML[index].format(target=target))
    with pytest.raises(GrammarError) as info:
        load_grammar(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}:")
    assert "YAML tag not allowed" in message and "plain YAML only" in message
    assert not target.exists()


def test_hostile_formula_inside_a_grammar(tmp_path):
    target = tmp_path / "X"
    path = tmp_path / "evil.yaml"
    path.write_text(f"operands:\n  g: grad\n  m: {{expr: \"__import__('os').system('touch {target}')\"}}\n")
    with pytest.raises(GrammarError, match=rf"^{re.escape(str(path))}:3: operands\.m\.expr: unexpected character"):
        load_grammar(path)
    assert not target.exists()


FORBIDDEN = {
    "eval(": r"(?<![\w.])(?<!def )eval\s*\(",
    "exec(": r"(?<![\w.])(?<!def )exec\s*\(",
    "sympify(": r"sympify\s*\(",
    "parse_expr(": r"parse_expr\s*\(",
    "yaml.load(": r"yaml\s*\.\s*(?:load|load_all|unsafe_load|full_load|unsafe_load_all|full_load_all)\s*\(",
    "unsafe yaml Loader": r"\b(?:UnsafeLoader|FullLoader|yaml\.Loader)\b",
    "pickle": r"\b(?:c?pickle|dill|marshal|shelve)\b",
    "__import__(": r"__import__\s*\(",
}


def _code_without_comments(path: Path) -> str:
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text(encoding="utf-8")).readline)
    return tokenize.untokenize((t.type, t.string) for t in tokens if t.type != tokenize.COMMENT)


def _violations(code: str) -> list[str]:
    return [name for name, pattern in FORBIDDEN.items() if re.search(pattern, code)]


def test_forbidden_pattern_detector_works():
    assert _violations("x = eval(text)") == ["eval("]
    assert _violations("yaml.load(f, Loader=yaml.Loader)") == ["yaml.load(", "unsafe yaml Loader"]
    assert _violations("import pickle") == ["pickle"]
    assert _violations("sp.sympify(s); parse_expr(s)") == ["sympify(", "parse_expr("]
    assert _violations("model.eval(); def eval(cls, x): pass; self.evaluate(x)") == []


def test_package_source_never_evaluates_text():
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 10
    found = {str(f.relative_to(PACKAGE)): v for f in files if (v := _violations(_code_without_comments(f)))}
    assert found == {}


def test_torch_load_only_with_weights_only():
    for path in sorted(PACKAGE.rglob("*.py")):
        code = _code_without_comments(path)
        for match in re.finditer(r"torch\s*\.\s*load\s*\(", code):
            call = re.sub(r"\s+", "", code[match.end(): match.end() + 300].split(")")[0])
            assert "weights_only=True" in call, f"{path}: torch.load without weights_only=True"
