"""Reading a search's result directory back: ``load_result(DIR)``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ResultError
from ..formula import Formula, parse_formula
from ..grammar import Grammar, load_grammar


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
        from ..optimizer import SymbolicOptimizer

        step = lr if lr is not None else self.lr
        if step is None:
            raise ResultError(f"{self.directory}: result has no lr; pass lr=...")
        return SymbolicOptimizer(params, self.formula, lr=step, **kwargs)

    def __repr__(self) -> str:
        return f"SearchResult({str(self.directory)!r}, formula={self.formula.text!r}, lr={self.lr})"


def load_result(directory: str | Path) -> SearchResult:
    """Load ``DIR/result.json`` and ``DIR/grammar.yaml`` written by ``dsr-l2o search``."""
    directory = Path(directory)
    result_path, grammar_path = directory / "result.json", directory / "grammar.yaml"
    if not directory.is_dir():
        raise ResultError(f"{directory}: no such result directory; pass the --out of a finished search")
    for path in (result_path, grammar_path):
        if not path.is_file():
            raise ResultError(f"{path}: missing; the search in {directory} did not finish (use --resume)")
    try:
        data = json.loads(result_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ResultError(f"{result_path}: not valid JSON ({err}); rerun the search") from None
    if not isinstance(data, dict) or not isinstance(data.get("formula"), str):
        raise ResultError(f"{result_path}: has no 'formula' string; rerun the search")
    grammar = load_grammar(grammar_path)
    lr = data.get("lr")
    return SearchResult(directory, parse_formula(data["formula"], grammar), grammar,
                        float(lr) if isinstance(lr, (int, float)) else None, data)
