"""Read the formula of a search result directory (``DIR/result.json`` + ``DIR/grammar.yaml``)."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import DsrError, ResultError
from ..formula import Formula, parse_formula
from ..grammar import load_grammar

MAX_RESULT_BYTES = 50_000_000


def read_result_formula(directory: str | Path) -> Formula:
    """The formula of a search result: ``result.json["formula"]`` parsed in ``DIR/grammar.yaml``
    (the default grammar when that file is absent and ``result.json`` says ``"grammar": "default"``)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultError(f"{directory}: not a directory; pass a search result directory or a formula")
    result_path = directory / "result.json"
    if not result_path.is_file():
        raise ResultError(f"{result_path}: missing; is {directory} the --out directory of 'dsr-l2o search'?")
    if result_path.stat().st_size > MAX_RESULT_BYTES:
        raise ResultError(f"{result_path}: larger than 50 MB; not a result file")
    try:
        data = json.loads(result_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ResultError(f"{result_path}: not valid JSON ({err}); re-run the search or fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("formula"), str):
        raise ResultError(f"{result_path}: needs a string field 'formula'")
    grammar_path = directory / "grammar.yaml"
    if grammar_path.is_file():
        grammar = load_grammar(grammar_path)
    elif data.get("grammar", "default") == "default":
        grammar = load_grammar(None)
    else:
        raise ResultError(f"{grammar_path}: missing; the result was found in grammar "
                          f"{data.get('grammar')!r}, copy its file there")
    try:
        return parse_formula(data["formula"], grammar)
    except DsrError as err:
        raise ResultError(f"{result_path}: formula {data['formula']!r} does not parse: {err}") from None
