"""Read the formula of a search result directory (``DIR/result.json`` + ``DIR/grammar.yaml``)."""

from __future__ import annotations

from pathlib import Path

from ..formula import Formula
from ..result import load_result


def read_result_formula(directory: str | Path) -> Formula:
    """The formula of a search result directory (see :func:`dsr_l2o.result.load_result`)."""
    return load_result(directory).formula
