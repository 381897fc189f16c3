"""``dsr-l2o export RESULT_DIR --format torch|latex|markdown|json [-o FILE]``."""

from __future__ import annotations

import click

FORMATS = ("torch", "latex", "markdown", "json")


@click.command()
@click.argument("result_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="torch: a standalone torch.optim.Optimizer (Python source); latex: the update "
                   "equation; markdown: a report page; json: result.json plus the simplified form.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to FILE (atomically) instead of stdout; markdown also copies the plots "
                   "into plots/ next to FILE.")
@click.option("--class-name", default="DiscoveredOptimizer", show_default=True,
              help="Class name of the torch export.")
def export(result_dir, fmt, output, class_name):
    """Export the search result in RESULT_DIR (the --out directory of 'dsr-l2o search')."""
    from pathlib import Path

    from ..export import export_text, read_result
    from ..export.markdown import copy_plots
    from ..atomic import write_text

    bundle = read_result(result_dir)
    text = export_text(bundle, fmt, class_name=class_name)
    if output is None:
        click.echo(text, nl=False)
        return
    path = Path(output)
    if fmt == "markdown":
        copy_plots(bundle, path.parent / "plots")
    write_text(path, text)
    click.echo(f"wrote {path}", err=True)
