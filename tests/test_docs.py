"""`dsr-l2o docs` regenerates the generated pages; `mkdocs build --strict` accepts the site."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dsr_l2o.cli import main
from dsr_l2o.cli.reference import cli_reference
from dsr_l2o.docs_gen import generate_docs
from dsr_l2o.errors import DsrError
from dsr_l2o.operators import BUILTIN_OPERATORS
from result_dir_factory import ADAM, LION, make_result_dir

REPO = Path(__file__).resolve().parent.parent


def site_copy(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs", ignore=shutil.ignore_patterns("searches"))
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    return root


def build(root: Path, tmp_path: Path) -> Path:
    site = tmp_path / "site"
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(root / "mkdocs.yml"),
                          "-d", str(site)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return site


def test_docs_with_searches_build_strictly(tmp_path):
    root = site_copy(tmp_path)
    make_result_dir(root / "searches" / "adam_like", *ADAM)
    make_result_dir(root / "searches" / "lion_like", *LION, evaluate=False)
    (root / "searches" / "not_a_search").mkdir()
    main(["docs", "--root", str(root)])
    pages = root / "docs" / "searches"
    assert sorted(p.name for p in pages.glob("*.md")) == ["adam_like.md", "index.md", "lion_like.md"]
    assert (pages / "adam_like" / "loss_quadratic_wellcond.png").is_file()
    index = (pages / "index.md").read_text()
    for row in ("| [adam_like](adam_like.md) |", "| [lion_like](lion_like.md) |", "| Adam |", "| Lion |", "| SGD |"):
        assert row in index
    assert r"\operatorname{sign}" in index and "No search is committed yet" not in index
    grammar_page = (root / "docs" / "grammar.md").read_text()
    for name, op in BUILTIN_OPERATORS.items():
        assert f"| <code>{name}</code> | {op.arity} |" in grammar_page
    assert "Usage: dsr-l2o export [OPTIONS] RESULT_DIR" in (root / "docs" / "cli.md").read_text()
    site = build(root, tmp_path)
    page = (site / "searches" / "adam_like" / "index.html").read_text()
    assert "loss_quadratic_wellcond.png" in page and "arithmatex" in page
    assert (site / "searches" / "adam_like" / "loss_quadratic_wellcond.png").is_file()

    shutil.rmtree(root / "searches" / "adam_like")
    shutil.rmtree(root / "searches" / "lion_like")
    generate_docs(root, cli_help=cli_reference())
    assert [p.name for p in pages.iterdir()] == ["index.md"]
    assert "No search is committed yet" in (pages / "index.md").read_text()
    build(root, tmp_path)


def test_docs_generation_is_idempotent_and_checks_markers(tmp_path):
    root = site_copy(tmp_path)
    generate_docs(root, cli_help=cli_reference())
    first = (root / "docs" / "grammar.md").read_text()
    generate_docs(root, cli_help=cli_reference())
    assert (root / "docs" / "grammar.md").read_text() == first
    (root / "docs" / "cli.md").write_text("# Command line\n")
    with pytest.raises(DsrError, match="generated:cli:start"):
        generate_docs(root, cli_help=cli_reference())
    with pytest.raises(DsrError, match="no docs/ folder"):
        generate_docs(tmp_path / "empty", cli_help=cli_reference())


def test_committed_docs_are_regenerated_from_the_committed_searches(tmp_path):
    root = tmp_path / "repo"
    shutil.copytree(REPO / "docs", root / "docs")
    shutil.copytree(REPO / "searches", root / "searches")
    shutil.copy(REPO / "mkdocs.yml", root / "mkdocs.yml")
    generate_docs(root, cli_help=cli_reference())
    generated = sorted(p.relative_to(root) for p in (root / "docs").rglob("*.md"))
    assert generated == sorted(p.relative_to(REPO) for p in (REPO / "docs").rglob("*.md"))
    for path in generated:
        assert (root / path).read_text() == (REPO / path).read_text(), f"{path} is stale: run 'dsr-l2o docs'"
    assert (root / "docs" / "searches" / "default.md").is_file()
    build(root, tmp_path)
