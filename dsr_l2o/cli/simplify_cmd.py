"""``dsr-l2o simplify "FORMULA" [--grammar FILE]``."""

from __future__ import annotations

import click


@click.command()
@click.argument("formula")
@click.option("--grammar", "grammar_file", type=click.Path(dir_okay=False),
              help="Grammar YAML file the formula is written in (default: the default grammar).")
def simplify(formula, grammar_file):
    """Simplify FORMULA with sympy; print it, its complexity and its LaTeX."""
    from pathlib import Path

    from ..formula import parse_formula
    from ..grammar import load_grammar
    from ..notation import latex
    from ..simplify import simplify as simplify_formula

    grammar = load_grammar(Path(grammar_file) if grammar_file else None)
    before = parse_formula(formula, grammar)
    after = simplify_formula(before)
    click.echo(f"formula:    {after.text}")
    click.echo(f"complexity: {after.size} (was {before.size})")
    click.echo(f"latex:      {latex(grammar, after.sympy)}")
