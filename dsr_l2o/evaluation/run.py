"""``evaluate_to_dir()``: a formula or a result directory against tuned baselines, written to a directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, FormulaError
from ..formula import Formula, parse_formula
from ..result import Evaluation
from ..threads import single_thread
from .compare import Comparison, compare
from .protocol import EvalProtocol, Progress


@dataclass
class EvaluationRun:
    """What ``evaluate_to_dir`` wrote: the comparison, the formula, and the files."""

    comparison: Comparison
    formula: Formula
    path: Path
    plots: list[Path]


def source_formula(source: str | Path, out: str | Path | None = None,
                   grammar: str | Path | None = None) -> tuple[Formula, Path | None, Path]:
    """The formula of a result directory or of a formula text in ``grammar``, that directory
    (``None`` for a text) and the output directory (``out``, else the result directory)."""
    from ..resources import is_file
    from .result_dir import read_result_formula

    path = Path(source)
    if is_file(path, directory=True):
        if grammar:
            raise ConfigError("--grammar is for a formula argument; a result directory brings its own grammar.yaml")
        return read_result_formula(path), path, Path(out) if out is not None else path
    try:
        formula = parse_formula(str(source), Path(grammar) if grammar else None)
    except FormulaError as err:
        raise FormulaError(f"{source!r} is neither a result directory nor a valid formula: {err}") from None
    if out is None:
        raise ConfigError("--out DIR is required when the argument is a formula")
    return formula, None, Path(out)


def search_tasks(result_dir: Path | None) -> tuple[set[str], str | None]:
    """What the search of ``result_dir`` saw, read from its ``config.yaml`` as the search reads it:
    the names of the validation tasks it selected on, and the task family it meta-trained on
    (``(set(), None)`` for a formula text (``None``) or a config that cannot be read: this is
    advice, not input the evaluation needs)."""
    from ..search.config import load_config
    from ..tasks import VALIDATION_TASKS

    path = None if result_dir is None else Path(result_dir) / "config.yaml"
    if path is None or not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES:
        return set(), None
    try:
        config = load_config(path)
    except (ConfigError, OSError, RecursionError):
        return set(), None
    return set(config.validation_tasks or VALIDATION_TASKS), config.tasks


MAX_CONFIG_BYTES = 1_000_000


def evaluate_to_dir(source: str | Path, tasks: list, baselines: list, protocol: EvalProtocol,
                    out: str | Path | None = None, grammar: str | Path | None = None, reference: str = "adam",
                    progress: Progress | None = None, known: dict | None = None, workers: int = 1) -> EvaluationRun:
    """Tune the formula of ``source`` (a result directory or formula text) and ``baselines`` on
    ``tasks`` under ``protocol``; write ``OUT/evaluation.json`` and ``OUT/plots/loss_<task>.png``.

    ``out`` defaults to the result directory; it is required for a formula text. ``known`` holds
    baselines already tuned under ``protocol`` (:func:`~.stored.read_stored_results`); ``workers``
    forked processes share the tasks (the same scores as one process).
    """
    from ..atomic import write_json
    from .baselines import formula_spec
    from .report import save_plots

    formula, directory, out = source_formula(source, out, grammar)
    if not tasks:
        raise ConfigError("--tasks is empty; give comma-separated task names (see 'dsr-l2o tasks')")
    specs = [formula_spec(formula, name="formula")] + list(baselines)
    with single_thread():
        comparison = compare(specs, tasks, protocol, progress=progress, candidates=("formula",), known=known,
                             workers=workers)
    record = Evaluation.from_json(comparison.to_json(reference))
    record.formula = {"text": formula.text, "grammar": formula.grammar.name,
                      "source": str(directory) if directory is not None else None}
    path = write_json(out / "evaluation.json", record.to_json())
    plots = save_plots(comparison, out / "plots", highlight="formula")
    return EvaluationRun(comparison, formula, path, plots)
