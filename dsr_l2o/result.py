"""Reading a search's result directory back: ``load_result(DIR)`` (the one reader every command uses)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import DsrError, ResultError, shorten
from .formula import Formula, parse_formula
from .grammar import Grammar, load_grammar

MAX_JSON_BYTES = 50_000_000


@dataclass
class SearchResult:
    """A finished search: its formula (in its own grammar), step size and everything it recorded."""

    directory: Path
    formula: Formula
    grammar: Grammar
    lr: float | None
    data: dict

    def optimizer(self, params, lr: float | None = None, **kwargs):
        """A :class:`~dsr_l2o.optimizer.SymbolicOptimizer` running the discovered rule."""
        from .optimizer import SymbolicOptimizer

        step = lr if lr is not None else self.lr
        if step is None:
            raise ResultError(f"{self.directory}: result has no lr; pass lr=...")
        return SymbolicOptimizer(params, self.formula, lr=step, **kwargs)

    def __repr__(self) -> str:
        return f"SearchResult({str(self.directory)!r}, formula={self.formula.text!r}, lr={self.lr})"


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``, or a one-line :class:`ResultError`."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ResultError(f"{path}: larger than 50 MB; not a {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_int=_json_int, parse_constant=_json_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise ResultError(f"{path}: not valid JSON ({shorten(err, 120)}); re-run the search or fix the file") from None
    except RecursionError:
        raise ResultError(f"{path}: JSON nests too deeply; not a {what}") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: must hold a JSON object, not {type(data).__name__}")
    return data


MAX_JSON_INT_DIGITS = 300


def _json_int(text: str) -> int | float:
    if len(text) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"a number with {len(text)} digits")
    return int(text)


def _json_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def load_result(directory: str | Path) -> SearchResult:
    """Load ``DIR/result.json`` and ``DIR/grammar.yaml`` written by ``dsr-l2o search``.

    ``grammar.yaml`` may be absent when the result says its grammar is ``default``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultError(f"{directory}: not a directory; pass the --out directory of 'dsr-l2o search'")
    result_path = directory / "result.json"
    if not result_path.is_file():
        raise ResultError(f"{result_path}: missing; is {directory} the --out directory of a finished "
                          "'dsr-l2o search' (or one to --resume)?")
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
        raise ResultError(f"{result_path}: formula {shorten(repr(data['formula']), 60)} does not parse: {err}") from None
    lr = data.get("lr")
    lr = float(lr) if isinstance(lr, (int, float)) and not isinstance(lr, bool) else None
    lr = lr if lr is not None and math.isfinite(lr) else None
    return SearchResult(directory, formula, grammar, lr, data)
