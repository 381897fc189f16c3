"""Read a search result directory for the exporters: result.json, its grammar, evaluation and plots."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..formula import Formula
from ..result import Evaluation, RuleResult, load_result, read_json


@dataclass
class ResultBundle:
    """What an exporter needs from ``DIR``: the typed result, its evaluation and its plots."""

    directory: Path
    result: RuleResult
    evaluation: Evaluation | None = None
    plots: list[Path] = field(default_factory=list)

    @property
    def formula(self) -> Formula:
        return self.result.formula

    @property
    def lr(self) -> float | None:
        """The learning rate the search tuned (or the distillation matched) for the formula."""
        return self.result.lr

    @property
    def name(self) -> str:
        """The result's name: its directory name."""
        return self.directory.resolve().name


def read_result(directory: str | Path) -> ResultBundle:
    """The result (see :func:`dsr_l2o.result.load_result`) plus the optional
    ``DIR/evaluation.json`` and ``DIR/plots/*.png``."""
    result = load_result(directory)
    directory = result.directory
    evaluation_path = directory / "evaluation.json"
    evaluation = Evaluation.from_json(read_json(evaluation_path, "evaluation file")) if evaluation_path.is_file() else None
    plots = _plots(directory / "plots")
    return ResultBundle(directory, result, evaluation, plots)


_PLOT_NAME = re.compile(r"[A-Za-z0-9_.-]+\.png")


def _plots(folder: Path) -> list[Path]:
    """The regular ``*.png`` files of ``folder`` with plain names (symlinks are never followed)."""
    if not folder.is_dir() or folder.is_symlink():
        return []
    return sorted(p for p in folder.glob("*.png") if _PLOT_NAME.fullmatch(p.name) and not p.is_symlink() and p.is_file())


def config_summary(data: dict | RuleResult, limit: int = 12) -> list[tuple[str, str]]:
    """Short ``(key, value)`` pairs describing a search's settings (scalars of ``config``, flattened)."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value):
        if len(rows) >= limit:
            return
        if isinstance(value, dict):
            for key, sub in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), sub)
        elif isinstance(value, (list, tuple)):
            if all(isinstance(v, (str, int, float, bool)) for v in value) and len(value) <= 8:
                rows.append((prefix, ", ".join(str(v) for v in value)))
        elif isinstance(value, (str, int, float, bool)) or value is None:
            rows.append((prefix, str(value)))

    config = data.config if isinstance(data, RuleResult) else data.get("config")
    if isinstance(config, dict):
        walk("", config)
    return rows
