"""``dsr-l2o evaluate FORMULA_OR_RESULT_DIR``: compare a formula with tuned baselines."""

from __future__ import annotations

import math
import sys

import click


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_lrs(text: str) -> tuple[float, ...]:
    """``"1e-3,1e-2,0.1"`` or ``"LO:HI:N"`` (N log-spaced values from LO to HI)."""
    from ..errors import ConfigError

    try:
        if ":" in text:
            lo, hi, n = text.split(":")
            lo, hi, n = float(lo), float(hi), int(n)
            if not (0 < lo <= hi and math.isfinite(hi) and n >= 1):
                raise ValueError
            if n == 1:
                return (lo,)
            ratio = (hi / lo) ** (1 / (n - 1))
            return tuple(float(f"{lo * ratio ** i:.3g}") for i in range(n))
        values = tuple(float(v) for v in _split(text))
    except ValueError:
        raise ConfigError(f"--lrs {text!r}: give comma-separated positive numbers (1e-3,1e-2) "
                          "or LO:HI:N for N log-spaced values") from None
    if not values or not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"--lrs {text!r}: learning rates must be positive finite numbers")
    return values


def _ratio(value) -> str:
    return "-" if value is None else format(value, ".3g")


def summary_lines(comparison, reference: str) -> list[str]:
    """The best baseline per task, then per task the formula's rank and its ratios."""
    best = {task: comparison.best_baseline(task) for task in comparison.tasks}
    lines = [f"{len(comparison.baselines)} tuned baselines: {', '.join(comparison.baselines)}"]
    if comparison.baselines:
        lines.append("best baseline per task: " + ", ".join(f"{t}: {b or 'all diverged'}" for t, b in best.items()))
    for task in comparison.tasks:
        text = f"{task}: formula rank {comparison.rank(task, 'formula')}/{len(comparison.optimizers)}"
        if reference in comparison.optimizers:
            text += f", score / {reference} = {_ratio(comparison.ratio(task, 'formula', reference))}"
        if best[task]:
            text += f", score / best baseline ({best[task]}) = {_ratio(comparison.ratio_to_best(task, 'formula'))}"
        lines.append(text)
    return lines


@click.command()
@click.argument("formula_or_result_dir")
@click.option("--tasks", "tasks_text", default=None,
              help="Comma-separated tasks: built-in task or family names, a task set (suite_test, "
                   "suite_validation, validation), or module:attr naming a task or a task family "
                   "[default: suite_test, the suite's test tasks, which the default search never meets and the "
                   "README's numbers are measured on].")
@click.option("--family-samples", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Tasks drawn from each family in --tasks (family.sample(0), sample(1), ...).")
@click.option("--baselines", "baselines_text", default=None,
              help="Comma-separated baselines: names, groups (classic, modern, all), module:Class "
                   "(e.g. pytorch_optimizer:Lamb), or 'none' [default: all, i.e. every baseline whose "
                   "library is installed].")
@click.option("--baseline-kwargs", "baseline_kwargs", multiple=True, metavar="SPEC=JSON",
              help="Extra constructor keywords for one baseline, as a JSON object, e.g. "
                   "'pytorch_optimizer:Lamb={\"weight_decay\": 0.01}' (repeatable; lr is always tuned).")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1, 100),
              help="Number of seeds (0, 1, ...), each for the initial parameters (and the data order of tasks that offer with_seed).")
@click.option("--out", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Output directory [default: the result directory].")
@click.option("--grammar", "grammar_file", default=None, type=click.Path(dir_okay=False),
              help="Grammar YAML the formula is written in [default: grammars/default.yaml].")
@click.option("--lrs", "lrs_text", default=None,
              help="Learning-rate grid: 1e-3,1e-2,... or LO:HI:N [default: 1e-4:10:16].")
@click.option("--steps", default=None, type=click.IntRange(1, None),
              help="Training steps per run [default: each task's own].")
@click.option("--extend-edges", default=3, show_default=True, type=click.IntRange(0, 20),
              help="Extra learning rates tried past a grid edge where the best one sits (0: never).")
@click.option("--reference", default="adam", show_default=True, help="Optimizer the ratios divide by.")
@click.option("--baseline-results", "baseline_results", default=None, type=click.Path(dir_okay=False),
              help="JSON of baselines already tuned under the same protocol (benchmarks/baselines.py writes "
                   "one): those are read instead of tuned again.")
@click.option("--workers", default="auto", show_default=True,
              help="Processes that tune, a task each: auto (one per CPU core) or N; the scores do not depend on it.")
def evaluate(formula_or_result_dir, tasks_text, family_samples, baselines_text, baseline_kwargs, seeds, out_dir,
             grammar_file, lrs_text, steps, extend_edges, reference, baseline_results, workers):
    """Tune FORMULA_OR_RESULT_DIR and baselines on the same lr grid and seeds; report and plot.

    The argument is a search result directory (its result.json and grammar.yaml are read) or a
    formula such as 'm_hat / (sqrt(v_hat) + 1e-8)'. Writes OUT/evaluation.json and
    OUT/plots/loss_<task>.png.
    """
    from ..errors import ConfigError
    from ..evaluation import EvalProtocol, get_baselines, parse_baseline_kwargs, parse_baseline_list
    from ..evaluation.baselines import EXTRA_HINT
    from ..evaluation.protocol import DEFAULT_LRS, DEFAULT_TASKS
    from ..evaluation.run import evaluate_to_dir, search_tasks, source_formula
    from ..tasks import get_tasks

    import torch

    from ..workers import resolve_workers, workers_flag

    workers = resolve_workers(workers_flag(workers), torch.device("cpu"))
    formula, result_dir, _ = source_formula(formula_or_result_dir, out_dir, grammar_file)
    names, skipped = parse_baseline_list(baselines_text)
    kwargs = parse_baseline_kwargs(baseline_kwargs)
    if kwargs and not names:
        raise ConfigError("--baseline-kwargs given but no baselines; name them in --baselines")
    baselines = get_baselines(names, kwargs) if names else []
    tasks = get_tasks([DEFAULT_TASKS] if tasks_text is None else _split(tasks_text), family_samples)
    protocol = EvalProtocol(lrs=parse_lrs(lrs_text) if lrs_text else DEFAULT_LRS,
                            seeds=tuple(range(seeds)), steps=steps, extend_edges=extend_edges)
    known = None
    if baseline_results:
        from ..evaluation.stored import read_stored_results

        known = read_stored_results(baseline_results, protocol)
    if skipped:
        click.echo(f"note: left out {', '.join(skipped)} (library not installed: {EXTRA_HINT})", err=True)
    click.echo(f"formula: {formula.text}  (grammar {formula.grammar.name})", err=True)
    selected_on, family = search_tasks(result_dir)
    seen = selected_on & {t.name for t in tasks}
    if seen:
        click.echo(f"note: {', '.join(sorted(seen))}: the search selected its formula on "
                   f"{'these tasks' if len(seen) > 1 else 'this task'}, so its scores there are not held out", err=True)
    if family and tasks_text is not None and family in _split(tasks_text):
        click.echo(f"note: {family}: the search meta-trained on this family, so its samples are not held out", err=True)
    stored = sum(b.name in (known or {}).get(t.name, {}) for b in baselines for t in tasks)
    total = protocol.runs_per_tune * ((1 + len(baselines)) * len(tasks) - stored)
    with click.progressbar(length=total, label="training runs", file=sys.stderr, show_pos=True) as bar:
        result = evaluate_to_dir(formula_or_result_dir, tasks, baselines, protocol, out_dir, grammar_file,
                                 reference, progress=bar.update, known=known, workers=workers)
    comparison, out, plots = result.comparison, result.path.parent, result.plots
    click.echo(f"formula: {formula.text}")
    click.echo(comparison.table(reference=reference, highlight="formula"))
    for line in summary_lines(comparison, reference):
        click.echo(line)
    click.echo(f"wrote {out / 'evaluation.json'} and {len(plots)} plot(s) in {out / 'plots'}")
