"""``dsr-l2o grammar check`` and ``dsr-l2o grammar show``: output, and one-line errors (exit 2); ``search --help``."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from dsr_l2o.cli import main
from dsr_l2o.grammar import default_grammar_path


def run(*args):
    """Run the ``dsr-l2o`` entry point in-process; return (exit code, stdout, stderr)."""
    runner = CliRunner()
    with runner.isolation() as (stdout, stderr, _):
        try:
            main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        return code, stdout.getvalue().decode(), stderr.getvalue().decode()


def test_check_default_grammar_is_ok():
    code, out, err = run("grammar", "check", "grammars/default.yaml")
    assert code == 0 and err == ""
    assert out.strip() == ("grammars/default.yaml: ok (grammar 'default': 8 operands, 7 unary, "
                           "4 binary operators, 1 custom operators, 3 constants)")


def test_check_accepts_path_without_suffix(tmp_path):
    (tmp_path / "mine.yaml").write_text("operands: {g: grad, m: {ema: g, beta: 0.5}}\nunary: [sign]\n")
    code, out, _ = run("grammar", "check", str(tmp_path / "mine"))
    assert code == 0 and out.startswith(f"{tmp_path / 'mine.yaml'}: ok (grammar 'mine': 2 operands, 1 unary")


BAD = {
    "unknown operator": ("operands: {g: grad}\nunary: [sgn]\n", ":2: unary.0: unknown operator 'sgn'"),
    "cycle": ("operands:\n  a: {expr: b}\n  b: {expr: a}\n", "definitions form a cycle"),
    "duplicate key": ("operands:\n  g: grad\n  g: param\n", ":3: operands.g: duplicate key"),
    "bad yaml": ("operands: [g: grad\n", "invalid YAML"),
    "python tag": ("operands: !!python/object/apply:os.system ['echo hi']\n", "YAML tag not allowed"),
    "empty": ("", "the grammar is empty"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_check_bad_grammar_is_one_line_exit_2(case, tmp_path):
    text, words = BAD[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = run("grammar", "check", str(path))
    assert code == 2 and out == ""
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith(f"error: {path}:") and words in err


def test_check_missing_file_directory_and_non_utf8(tmp_path):
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\noperands: {g: grad}\n")
    for arg, words in [(tmp_path / "nope.yaml", "no such grammar file"),
                       (tmp_path, "is a directory"),
                       (tmp_path / "latin.yaml", "not UTF-8 text")]:
        code, out, err = run("grammar", "check", str(arg))
        assert code == 2 and len(err.splitlines()) == 1 and words in err, err


def test_console_script_exit_code_and_single_line(tmp_path):
    path, imported = tmp_path / "bad.yaml", tmp_path / "imported_torch"
    path.write_text("operands: {g: grad}\nbinary: [sqrt]\n")
    note_torch = f"import atexit, sys; atexit.register(lambda: open({str(imported)!r}, 'w').write(str('torch' in sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", f"{note_torch}; from dsr_l2o.cli import main; main()", "grammar",
                           "check", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.splitlines() == [f"error: {path}:2: binary.0: 'sqrt' takes 1 argument(s); list it under unary"]
    assert imported.read_text() == "False"  # checking a grammar does not pay for importing torch


def test_show_default_grammar():
    code, out, _ = run("grammar", "show")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("grammar default: ")
    assert "  m_hat    EMA of g with beta 0.9, bias-corrected by 1 - beta**t" in lines
    assert "  sqrt      sqrt(|x|); its derivative is capped near 0" in lines
    assert "  softsign(x) = x / (1 + abs(x))" in lines
    assert "constants: 1, 2, 0.5" in lines


def test_show_file_with_custom_operators_in_latex(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("operands:\n  g: grad\n  beta2: {ema: 'g**2', beta: 0.99}\nunary: [soft_sign]\n"
                    "binary: [add]\noperators:\n  soft_sign: {args: [x], expr: 'x / (1 + abs(x))'}\n")
    code, out, _ = run("grammar", "show", str(path), "--latex")
    assert code == 0
    assert r"{\beta_{2}}_t = 0.99\, {\beta_{2}}_{t-1} + 0.01 \left(g^{2}\right)" in out
    assert r"  soft_sign  \operatorname{soft\_sign}\left(x\right)" in out
    assert "  add       x + y" in out


def test_show_plain_and_latex_differ_for_default():
    _, plain, _ = run("grammar", "show", str(default_grammar_path()))
    _, latex, _ = run("grammar", "show", "--latex")
    assert "EMA of g**2 with beta 0.999" in plain
    assert r"\hat{v}_t = \frac{\hat{v}^{\mathrm{raw}}_t}{1 - 0.999^{t}}" in latex


def test_search_help_states_the_packaged_grow_default():
    from dsr_l2o.search.config import SearchConfig

    code, out, _ = run("search", "--help")
    text = " ".join(out.split())
    assert code == 0
    assert f"[default: {'on' if SearchConfig().grow else 'off'}, from searches/default.yaml]" in text
