"""Render the docs' math at build time, so the site shows formulas with no network and no script.

A Python-Markdown extension (``markdown_extensions: [pymdownx.arithmatex: {generic: true},
dsr_l2o.docs_math]`` in ``mkdocs.yml``): after arithmatex has marked every ``$...$`` and
``$$...$$`` span, each one is rendered by KaTeX into MathML, which browsers draw natively. KaTeX
is the command-line build that the ``markdown-katex`` package ships, so nothing is fetched at build
or view time. Results are cached on disk by their TeX, so rebuilding the site is fast.
"""

from __future__ import annotations

import hashlib
import html
import platform
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from xml.etree import ElementTree as etree

from markdown import Extension
from markdown.treeprocessors import Treeprocessor

from .atomic import write_text
from .errors import DsrError

WRAPPERS = ((r"\(", r"\)", False), (r"\[", r"\]", True))
CACHE_DIR = Path(tempfile.gettempdir()) / "dsr_l2o-katex"


@lru_cache(maxsize=1)
def katex_binary() -> Path:
    """The KaTeX command-line binary that ``markdown-katex`` ships for this platform."""
    try:
        import markdown_katex
    except ImportError as err:
        raise DsrError("rendering the docs' math needs markdown-katex: pip install -e \".[docs]\"") from err
    machine = {"AMD64": "x86_64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())
    found = sorted((Path(markdown_katex.__file__).parent / "bin").glob(f"katex_*_{machine}-{platform.system()}*"))
    if not found:
        raise DsrError(f"markdown-katex ships no KaTeX binary for {platform.system()} {machine}; "
                       "build the docs on x86_64 Linux, macOS or Windows")
    return found[-1]


def render_tex(tex: str, display: bool) -> str:
    """KaTeX's MathML for ``tex`` (``<span class="katex"><math>...``); raises DsrError naming a bad formula."""
    binary = katex_binary()
    args = [str(binary), "--format", "mathml"] + (["--display-mode"] if display else [])
    key = hashlib.sha256("\0".join([binary.name, *args[1:], tex]).encode()).hexdigest()
    cached = CACHE_DIR / f"{key}.html"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    run = subprocess.run(args, input=tex, capture_output=True, text=True, encoding="utf-8", timeout=60)
    if run.returncode != 0 or "<math" not in run.stdout:
        reason = (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise DsrError(f"KaTeX cannot render the formula {tex!r}: {reason}; fix the TeX in the page")
    markup = run.stdout.strip()
    write_text(cached, markup)
    return markup


def split_math(text: str) -> tuple[str, bool] | None:
    """The TeX inside arithmatex's ``\\(...\\)`` or ``\\[...\\]`` (which arithmatex HTML-escapes) and
    whether it is display math."""
    text = text.strip()
    for start, end, display in WRAPPERS:
        if text.startswith(start) and text.endswith(end):
            tex = text[len(start):-len(end)].strip()
            return (html.unescape(tex) if display else tex), display
    return None


class KatexTreeprocessor(Treeprocessor):
    """Replace each arithmatex element's TeX by KaTeX's MathML (kept inside the arithmatex element)."""

    def run(self, root: etree.Element) -> None:
        found = []
        for element in root.iter():
            if "arithmatex" in (element.get("class") or "").split() and len(element) == 0 and element.text:
                math = split_math(element.text)
                if math is not None:
                    found.append((element, *math))
        with ThreadPoolExecutor(max_workers=4) as pool:
            rendered = list(pool.map(lambda item: render_tex(item[1], item[2]), found))
        for (element, _, _), markup in zip(found, rendered):
            element.text = self.md.htmlStash.store(markup)


class KatexExtension(Extension):
    """Server-side KaTeX for pymdownx.arithmatex's generic output."""

    def extendMarkdown(self, md) -> None:
        md.treeprocessors.register(KatexTreeprocessor(md), "dsr_l2o_katex", 5)


def makeExtension(**kwargs) -> KatexExtension:
    """Entry point for Python-Markdown (``markdown_extensions: [dsr_l2o.docs_math]``)."""
    return KatexExtension(**kwargs)
