"""User-facing errors: one line that says what is wrong and how to fix it."""

from __future__ import annotations

MAX_ECHO_CHARS = 40
"""Longest piece of user text (a rejected number or name) repeated in an error message."""


def shorten(text, limit: int = MAX_ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters with a note of its full length (for error messages)."""
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


class DsrError(Exception):
    """Base class of every error the command line reports as a single line (exit status 2)."""


class GrammarError(DsrError):
    """A grammar file is malformed; the message names file, key (and line) and the fix."""


class FormulaError(DsrError):
    """A formula does not parse in its grammar."""


class TaskError(DsrError):
    """A task name or ``module:attr`` task spec cannot be resolved."""


class ConfigError(DsrError):
    """A search/evaluation configuration is invalid."""


class ResultError(DsrError):
    """A result directory is missing or incomplete."""


class SearchInterrupted(DsrError):
    """A search stopped by Ctrl-C; the message says how to resume it (the CLI exits 130)."""

    exit_code = 130


class DistributedError(DsrError):
    """A process of a distributed run could not reach the others (one died, hung or never started)."""
