"""Read a search result directory for the exporters: result.json, its grammar, evaluation and plots."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DsrError, ResultError
from ..formula import Formula, parse_formula
from ..grammar import load_grammar

MAX_JSON_BYTES = 50_000_000


@dataclass
class ResultBundle:
    """What an exporter needs from ``DIR``: the parsed formula and the raw JSON documents."""

    directory: Path
    data: dict
    formula: Formula
    evaluation: dict | None = None
    plots: list[Path] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The result's name: its directory name."""
        return self.directory.resolve().name

    @property
    def lr(self) -> float | None:
        """The learning rate the search tuned for the formula, if recorded."""
        lr = self.data.get("lr")
        return float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``, or a one-line :class:`ResultError`."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ResultError(f"{path}: larger than 50 MB; not a {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultError(f"{path}: not valid JSON ({err}); re-run the search or fix the file") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: must hold a JSON object, not {type(data).__name__}")
    return data


def read_result(directory: str | Path) -> ResultBundle:
    """Load ``DIR/result.json`` (required, with a string ``formula``), ``DIR/grammar.yaml``
    (required unless the result's grammar is ``default``), and the optional
    ``DIR/evaluation.json`` and ``DIR/plots/*.png``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultError(f"{directory}: not a directory; pass the --out directory of 'dsr-l2o search'")
    result_path = directory / "result.json"
    if not result_path.is_file():
        raise ResultError(f"{result_path}: missing; is {directory} the --out directory of 'dsr-l2o search'?")
    data = read_json(result_path, "result file")
    if not isinstance(data.get("formula"), str):
        raise ResultError(f"{result_path}: needs a string field 'formula' (the discovered update rule)")
    grammar_path = directory / "grammar.yaml"
    if grammar_path.is_file():
        grammar = load_grammar(grammar_path)
    elif data.get("grammar", "default") == "default":
        grammar = load_grammar(None)
    else:
        raise ResultError(f"{grammar_path}: missing; the result was found in grammar "
                          f"{data.get('grammar')!r}, copy that grammar file there")
    try:
        formula = parse_formula(data["formula"], grammar)
    except DsrError as err:
        raise ResultError(f"{result_path}: formula {data['formula']!r} does not parse: {err}") from None
    evaluation_path = directory / "evaluation.json"
    evaluation = read_json(evaluation_path, "evaluation file") if evaluation_path.is_file() else None
    plots = sorted((directory / "plots").glob("*.png")) if (directory / "plots").is_dir() else []
    return ResultBundle(directory, data, formula, evaluation, plots)


def config_summary(data: dict, limit: int = 12) -> list[tuple[str, str]]:
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

    config = data.get("config")
    if isinstance(config, dict):
        walk("", config)
    return rows
