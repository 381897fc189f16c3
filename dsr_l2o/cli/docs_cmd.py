"""``dsr-l2o docs [--root DIR]``: regenerate the generated pages of the docs site."""

from __future__ import annotations

import click


@click.command()
@click.option("--root", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Repository root holding docs/ and searches/.")
def docs(root):
    """Write the operator table, the CLI reference and the pages of committed searches.

    Reads searches/*/result.json (with their evaluation.json and plots/); then build the site
    with 'mkdocs build --strict'.
    """
    from ..docs_gen import generate_docs
    from .reference import cli_reference

    written = generate_docs(root, cli_help=cli_reference())
    click.echo(f"wrote {len(written)} docs file(s) under {root}/docs")
