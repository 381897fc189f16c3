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
    from .result_dir import read_result_formula

    path = Path(source)
    if path.is_dir():
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


def selection_tasks(source: str | Path) -> set[str]:
    """Names of the validation tasks the search of result directory ``source`` selected on (its
    ``config.yaml``); empty for a formula text or where the config does not say."""
    import yaml

    path = Path(source) / "config.yaml"
    if not path.is_file():
        return set()
    try:
        names = yaml.safe_load(path.read_text(encoding="utf-8")).get("validation_tasks")
    except (yaml.YAMLError, OSError, UnicodeDecodeError, AttributeError):
        return set()
    if not names:
        from ..tasks import VALIDATION_TASKS

        names = VALIDATION_TASKS
    return {n for n in names if isinstance(n, str)} if isinstance(names, (list, tuple)) else set()


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
