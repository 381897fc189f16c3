"""A Markdown report page of a search result: formula, how it was found, comparison, plots, candidates."""

from __future__ import annotations

import html
import math
import re
from pathlib import Path

from ..atomic import copy_file
from ..simplify import simplify
from .bundle import ResultBundle, config_summary
from .latex import aligned, latex_lines

from ..evaluation.baselines import BASELINE_NAMES

BASELINES = set(BASELINE_NAMES)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~])")


def cell(value) -> str:
    """Text we did not write, safe inside a Markdown table cell: no markup, no HTML, no ``|``."""
    text = " ".join(str(value).split())
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)


def code(value) -> str:
    """Inline code safe inside a Markdown table cell (HTML, so a ``|`` cannot split the cell)."""
    text = html.escape(str(value).replace("\n", " ")).replace("|", "&#124;")
    return f"<code>{text}</code>"


def inline(value) -> str:
    """Inline code in running text."""
    return "`" + str(value).replace("`", "'").replace("\n", " ") + "`"


def number(value, spec: str = ".4g") -> str:
    """A number for a table; missing values are '-', null scores 'diverged'."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-"
    return "diverged" if not math.isfinite(value) else format(value, spec)


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def formula_block(bundle: ResultBundle) -> list[str]:
    """The update rule and the operand definitions as display math."""
    formula = simplify(bundle.formula)
    update, *operands = latex_lines(formula, bundle.lr)
    lines = ["$$", update, "$$", ""]
    if operands:
        lines += ["where", "", "$$", aligned(operands), "$$", ""]
    result = bundle.result
    lr_label = "lr" if result.route == "distil" else "tuned lr"
    lines.append(f"Formula: {inline(formula.text)} (complexity {formula.size}, grammar "
                 f"{inline(formula.grammar.name)}" + (f", {lr_label} {bundle.lr:g})." if bundle.lr else ")."))
    lines += naming_line(bundle, formula)
    if formula.text != bundle.formula.text:
        lines += ["", f"As found: {inline(bundle.formula.text)}."]
    raw = getattr(result, "raw_formula", None)
    if raw and raw not in (formula.text, bundle.formula.text):
        lines += ["", f"Before pruning and simplification: {inline(raw)}."]
    grow = getattr(result, "grow", None)
    if getattr(result, "stage", None) == "grow" and grow:
        lines += ["", f"Found by the grow stage, as a correction of {inline(str(grow.get('base', '?')))} "
                      f"(the relaxation's own argmax was {inline(str(result.relaxation_argmax or '?'))})."]
    return lines


def naming_line(bundle: ResultBundle, formula) -> list[str]:
    """What the rule is among published rules (result.json's ``naming``, else computed)."""
    from ..errors import DsrError
    from ..naming import RuleName, name_rule

    try:
        stored = bundle.result.naming
        naming = RuleName.from_json(stored) if stored else name_rule(formula)
    except DsrError:
        return []
    how = ("up to a positive scale" if naming.equal_to else
           "by the mean cosine r of their update directions on recorded training steps")
    if naming.equal_to and naming.betas:
        how += ", its moving averages at the betas named"
    return ["", f"Among published rules it is {naming.text()}: {inline(naming.rule_formula)} {how}."]


def provenance_block(bundle: ResultBundle) -> list[str]:
    """How the formula was found: search settings and the meta-training summary."""
    lines = ["## How it was found", ""]
    result = bundle.result
    metrics = result.metrics
    facts = [("meta-steps", metrics.get("meta_steps")), ("final meta-loss", metrics.get("final_meta_loss")),
             ("skipped meta-steps", metrics.get("skipped_steps")), ("meta-training time (s)", metrics.get("seconds")),
             ("recorded samples", metrics.get("samples")), ("R² of the teacher's updates", getattr(result, "r2", None))]
    rows = [[label, number(value, ".6g")] for label, value in facts if value is not None]
    for key in ("created", "dsr_l2o_version"):
        if getattr(result, key):
            rows.append([key.replace("_", " "), cell(getattr(result, key))])
    rows += [[code(key), cell(value)] for key, value in config_summary(result, limit=40)]
    lines += [table(["setting", "value"], rows) if rows else "No search settings were recorded.", ""]
    return lines


def comparison_block(evaluation: dict | None) -> list[str]:
    """Per task, each optimizer's tuned score, learning rate and ratio to the reference."""
    lines = ["## Comparison with tuned baselines", ""]
    tasks = evaluation.get("tasks") if isinstance(evaluation, dict) else None
    if not isinstance(tasks, dict) or not tasks:
        return lines + ["No evaluation was recorded (evaluation.json is missing or empty).", ""]
    reference = evaluation.get("reference") if isinstance(evaluation.get("reference"), str) else "adam"
    ratios = evaluation.get("ratio_to_reference") if isinstance(evaluation.get("ratio_to_reference"), dict) else {}
    to_best = evaluation.get("ratio_to_best_baseline") if isinstance(evaluation.get("ratio_to_best_baseline"), dict) else {}
    rows, derived = [], {}
    for task, info in tasks.items():
        results = info.get("results") if isinstance(info, dict) else None
        if not isinstance(results, dict):
            continue
        task_ratios = ratios.get(task) if isinstance(ratios.get(task), dict) else {}
        task_best = to_best.get(task) if isinstance(to_best.get(task), dict) else {}
        best = info.get("best_baseline") if isinstance(info.get("best_baseline"), str) else None
        if task not in to_best:  # written before the best baseline was recorded: derive it
            best, task_best = _best_baseline(results)
            derived[task] = task_best
        ordered = sorted(results.items(), key=lambda kv: _score_key(kv[1]))
        for name, r in ordered:
            r = r if isinstance(r, dict) else {}
            label = code(name) if name.lower() in BASELINES else f"**{code(name)}**"
            score = "diverged" if r.get("diverged") or r.get("best_score") is None else number(r.get("best_score"))
            rows.append([cell(task), label + (" (best baseline)" if name == best else ""), score,
                         number(r.get("best_lr"), ".3g"), number(task_ratios.get(name), ".3f"),
                         number(task_best.get(name), ".3g"), number(r.get("rank"), "d")])
    lines += [table(["task", "optimizer", "score", "best lr", f"score / {cell(reference)}",
                     "score / best baseline", "rank"], rows), ""]
    lines += ["Score: mean training loss over the last steps, averaged over seeds, at each optimizer's "
              "best learning rate on the same grid (lower is better).", ""]
    geomean = evaluation.get("geomean_ratio_to_reference")
    geo_best = evaluation.get("geomean_ratio_to_best_baseline")
    geo_best = geo_best if isinstance(geo_best, dict) else {}
    if derived and len(derived) == len(tasks):
        from ..evaluation.ratios import geometric_mean_ratio

        names = set.intersection(*(set(r) for r in derived.values()))
        geo_best = {n: geometric_mean_ratio([r[n] for r in derived.values()], [1.0] * len(derived)) for n in names}
    if isinstance(geomean, dict) and geomean:
        ordered = sorted(geomean.items(), key=lambda kv: (kv[1] if isinstance(kv[1], (int, float)) else math.inf))
        lines += [table(["optimizer", f"geometric mean of score / {cell(reference)}",
                         "geometric mean of score / best baseline"],
                        [[code(n), number(v, ".3f"), number(geo_best.get(n), ".3g")] for n, v in ordered]), ""]
    return lines


def _best_baseline(results: dict) -> tuple[str | None, dict]:
    """The best-scoring known baseline among ``results`` and every result's ratio to it."""
    from ..evaluation.ratios import score_ratio

    scores = {name: r.get("best_score") for name, r in results.items() if isinstance(r, dict)
              and isinstance(r.get("best_score"), (int, float))}
    known = [name for name in scores if name.lower() in BASELINES and math.isfinite(scores[name])]
    if not known:
        return None, {}
    best = min(known, key=lambda name: scores[name])
    ratios = {name: math.inf for name, r in results.items() if isinstance(r, dict) and r.get("diverged")}
    return best, {**ratios, **{name: score_ratio(score, scores[best]) for name, score in scores.items()}}


def _score_key(result) -> tuple:
    score = result.get("best_score") if isinstance(result, dict) else None
    return (0, score) if isinstance(score, (int, float)) and math.isfinite(score) else (1, 0.0)


def plots_block(bundle: ResultBundle, plot_dir: str) -> list[str]:
    """Image links to the result's plots, relative to the page (``plot_dir/NAME.png``)."""
    if not bundle.plots:
        return []
    lines = ["## Plots", ""]
    for path in bundle.plots:
        lines += [f"![{path.stem.replace('_', ' ')}]({plot_dir}/{path.name})", ""]
    return lines


def candidates_block(data: dict) -> list[str]:
    """The formulas considered: for a search their tuned lr, validation score ratio to tuned Adam
    and why any was rejected; for a distillation their fitted scale and R^2."""
    candidates = data.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        return []
    distilled = data.get("route") == "distil"
    rows = []
    for i, c in enumerate(candidates, 1):
        if not isinstance(c, dict):
            continue
        if distilled:
            rows.append([str(i), code(c.get("formula", "?")), number(c.get("complexity"), "d"),
                         number(c.get("alpha"), ".4g"), number(c.get("r2"), ".6f")])
        else:
            rows.append([str(i), code(c.get("formula", "?")), cell(c.get("stage") or "relaxation"),
                         number(c.get("lr"), ".3g"), number(c.get("score_ratio_to_adam")),
                         cell(c.get("rejected") or "")])
    header = (["#", "formula", "complexity", "scale", "R²"] if distilled
              else ["#", "formula", "stage", "lr", "score / tuned Adam", "rejected"])
    return ["## Candidates", "", table(header, rows), ""] + grow_block(data)


def grow_block(data: dict) -> list[str]:
    """The grow stage's best corrections of the relaxation's formula, with their scores."""
    info = data.get("grow")
    ranking = info.get("ranking") if isinstance(info, dict) else None
    if not isinstance(ranking, list) or not ranking:
        return []
    rows = [[str(i), code(g.get("formula", "?")), number(g.get("score"), ".4g")]
            for i, g in enumerate(ranking, 1) if isinstance(g, dict)]
    intro = (f"Corrections `base + c * term` of {code(info.get('base', '?'))} "
             f"({number(info.get('terms'), 'd')} terms), ranked on {number(info.get('episodes'), 'd')} tasks of "
             f"{code(info.get('tasks', '?'))} by the mean final log loss at each rule's best lr per task "
             "(lower is better; the base itself has c = 0):")
    return ["## Grow stage", "", intro, "", table(["#", "formula", "score"], rows), ""]


def markdown_report(bundle: ResultBundle, plot_dir: str = "plots", title: str | None = None) -> str:
    """The report page; plots are linked as ``plot_dir/NAME.png`` (see :func:`copy_plots`)."""
    kind = "Distillation " if bundle.result.route == "distil" else "Search "
    lines = [f"# {title or kind + inline(bundle.name)}", ""]
    lines += formula_block(bundle) + [""]
    lines += provenance_block(bundle)
    lines += comparison_block(bundle.evaluation.to_json() if bundle.evaluation else None)
    lines += plots_block(bundle, plot_dir)
    lines += candidates_block(bundle.result.to_json())
    return "\n".join(lines).rstrip() + "\n"


def copy_plots(bundle: ResultBundle, destination: str | Path) -> list[Path]:
    """Copy the result's plots into ``destination`` (created if needed); returns the copies."""
    destination = Path(destination)
    if not bundle.plots:
        return []
    destination.mkdir(parents=True, exist_ok=True)
    copies = []
    for path in bundle.plots:
        target = destination / path.name
        if path.is_symlink() or not path.is_file():
            continue  # read_result already skips these; a plot swapped since is not copied either
        if path.resolve() != target.resolve():
            copy_file(path, target)
        copies.append(target)
    return copies
