"""The ``dsr-l2o`` command. Subcommands live in their own modules and are imported lazily,
so ``--help`` and ``--version`` stay fast."""

from __future__ import annotations

import sys
from importlib import import_module

import click

from .. import __version__

COMMANDS = {
    "grammar": ("dsr_l2o.cli.grammar_cmd", "grammar", "Check and show grammar files."),
    "search": ("dsr_l2o.cli.search_cmd", "search", "Search a grammar for an update rule."),
    "distil": ("dsr_l2o.cli.distil_cmd", "distil", "Distil a teacher optimizer into a formula."),
    "l2o": ("dsr_l2o.cli.l2o_cmd", "l2o", "Train a neural (LSTM) learned optimizer to distil."),
    "evaluate": ("dsr_l2o.cli.evaluate_cmd", "evaluate", "Compare a formula with tuned baselines."),
    "tasks": ("dsr_l2o.cli.tasks_cmd", "tasks", "List the built-in optimizee tasks."),
    "simplify": ("dsr_l2o.cli.simplify_cmd", "simplify", "Simplify a formula with sympy."),
    "export": ("dsr_l2o.cli.export_cmd", "export", "Export a search result (torch, LaTeX, ...)."),
    "docs": ("dsr_l2o.cli.docs_cmd", "docs", "Write the docs pages of committed searches."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when they run."""

    def list_commands(self, ctx):
        return [name for name, (module, _, _) in COMMANDS.items() if _available(module)]

    def get_command(self, ctx, name):
        if name not in COMMANDS or not _available(COMMANDS[name][0]):
            return None
        module, attr, _ = COMMANDS[name]
        return getattr(import_module(module), attr)

    def format_commands(self, ctx, formatter):
        rows = [(name, COMMANDS[name][2]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _available(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dsr-l2o")
def cli():
    """Discover readable optimizer update rules by differentiable symbolic search."""


def main(argv=None) -> None:
    """Entry point: runs the command; library errors become one line on stderr and exit 2."""
    from ..errors import DsrError, SearchInterrupted

    try:
        cli.main(args=argv, prog_name="dsr-l2o", standalone_mode=False)
    except SearchInterrupted as err:
        click.echo(str(err), err=True)
        sys.exit(INTERRUPTED)
    except click.exceptions.Abort as err:  # click turns Ctrl-C (and EOF at a prompt) into Abort
        if isinstance(err.__cause__ or err.__context__, KeyboardInterrupt):
            click.echo("interrupted", err=True)
            sys.exit(INTERRUPTED)
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except DsrError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(INTERRUPTED)


INTERRUPTED = 130
"""Exit status after Ctrl-C (128 + SIGINT); bad input exits 2."""
