"""``dsr-l2o tasks [NAME]``: list the optimizee tasks and families, or describe one."""

from __future__ import annotations

import click


@click.command()
@click.argument("name", required=False)
def tasks(name):
    """List built-in tasks and families; with NAME (task, family or module:attr) show details."""
    from ..tasks.describe import describe, overview

    click.echo(describe(name) if name else overview())
