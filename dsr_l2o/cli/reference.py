"""Every ``dsr-l2o`` command's ``--help`` as Markdown: the body of ``docs/cli.md``."""

from __future__ import annotations


def cli_reference(width: int = 100) -> str:
    """Every ``dsr-l2o`` command's ``--help``, as Markdown sections."""
    import click

    from . import cli

    root = click.Context(cli, info_name="dsr-l2o", terminal_width=width, max_content_width=width,
                         help_option_names=["-h", "--help"])
    parts = [f"## dsr-l2o\n\n```text\n{cli.get_help(root)}\n```"]

    def walk(group, parent, prefix):
        for name in group.list_commands(parent):
            command = group.get_command(parent, name)
            if command is None:
                continue
            ctx = click.Context(command, info_name=name, parent=parent, terminal_width=width, max_content_width=width)
            parts.append(f"## {prefix} {name}\n\n```text\n{command.get_help(ctx)}\n```")
            if isinstance(command, click.Group):
                walk(command, ctx, f"{prefix} {name}")

    walk(cli, root, "dsr-l2o")
    return "\n\n".join(parts)
