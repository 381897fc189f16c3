"""``dsr-l2o grammar check FILE`` and ``dsr-l2o grammar show [FILE]``."""

from __future__ import annotations

import click


@click.group()
def grammar():
    """Check and show grammar files."""


@grammar.command()
@click.argument("file")
def check(file):
    """Validate a grammar file; exit non-zero with a one-line error if it is invalid.

    FILE is a path (``.yaml`` may be left out) or the name of a shipped grammar such as ``default``.
    """
    from pathlib import Path

    from ..grammar import load_grammar

    g = load_grammar(Path(file))
    click.echo(f"{g.path}: ok (grammar {g.name!r}: {len(g.operands)} operands, "
               f"{len(g.unary)} unary, {len(g.binary)} binary operators, {len(g.custom)} custom "
               f"operators, {len(g.constants)} constants)")


@grammar.command()
@click.argument("file", required=False)
@click.option("--latex", is_flag=True, help="Write definitions in LaTeX instead of plain text.")
def show(file, latex):
    """Show a grammar's operands, operators and constants (default grammar without FILE)."""
    from pathlib import Path

    from ..grammar import load_grammar
    from ..grammar_view import describe

    click.echo(describe(load_grammar(Path(file) if file else None), latex=latex))
