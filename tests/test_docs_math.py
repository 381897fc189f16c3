"""The docs' math is rendered to MathML at build time by the KaTeX that markdown-katex ships."""

import markdown
import pytest

from dsr_l2o.docs_math import render_tex, split_math
from dsr_l2o.errors import DsrError

EXTENSIONS = ["tables", "pymdownx.arithmatex", "dsr_l2o.docs_math"]
CONFIG = {"pymdownx.arithmatex": {"generic": True}}


def to_html(text: str) -> str:
    return markdown.markdown(text, extensions=EXTENSIONS, extension_configs=CONFIG)


def test_inline_block_and_table_math_become_mathml():
    html = to_html("Adam: $\\frac{m}{\\sqrt{v} + \\epsilon}$.\n\n$$\na < b, \\quad w_t = w_{t-1} - \\eta f\n$$\n\n"
                   "| rule | f |\n|---|---|\n| sign | $\\operatorname{sign}(g)$ |\n")
    assert html.count('<span class="katex"><math') == 3
    assert 'display="block"' in html and "<mfrac>" in html and "<mo>&lt;</mo>" in html
    assert "\\(" not in html and "\\[" not in html and "$" not in html
    assert 'class="arithmatex"' in html


def test_display_math_is_unescaped_before_katex_reads_it():
    assert split_math("\\[\na &lt; b\n\\]") == ("a < b", True)
    assert split_math("\\(x\\)") == ("x", False)
    assert split_math("plain text") is None


def test_bad_tex_is_one_line_error_naming_the_formula():
    with pytest.raises(DsrError, match=r"KaTeX cannot render the formula '\\\\frac\{a\}'"):
        render_tex("\\frac{a}", display=False)
    assert render_tex("x^2", display=False) == render_tex("x^2", display=False)
