"""Reports of a :class:`~.compare.Comparison`: a terminal table, JSON, and loss-curve plots."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_path

MAX_CURVE_POINTS = 200


def _num(value):
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fmt(value, spec: str = ".4g", missing: str = "-") -> str:
    if value is None:
        return missing
    if isinstance(value, float) and math.isinf(value):
        return "diverged"
    return format(value, spec)


def _curve_points(curve) -> dict | None:
    if curve is None:
        return None
    n = len(curve)
    idx = np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).round().astype(int))
    return {"step": [int(i) for i in idx], "loss": [_num(curve[i]) for i in idx]}


def result_json(result, rank: int | None = None) -> dict:
    """One :class:`~.protocol.TuneResult` as a JSON-ready dict (curve subsampled to 200 points)."""
    return {
        "optimizer": result.optimizer,
        "formula": result.formula,
        "best_lr": result.best_lr,
        "best_score": _num(result.best_score),
        "diverged": result.diverged,
        "rank": rank,
        "steps_to_threshold": result.steps_to_threshold,
        "heldout": result.heldout,
        "scores_by_lr": [
            {"lr": lr, "score": _num(score), "seed_scores": [_num(s) for s in result.seed_scores[lr]]}
            for lr, score in result.scores_by_lr.items()
        ],
        "curve": _curve_points(result.curve),
        "seconds": round(result.seconds, 3),
    }


def comparison_json(comparison, reference: str = "adam") -> dict:
    """The whole comparison as a JSON-ready dict; non-finite numbers become ``null``.

    Ratios divide by ``reference`` (``ratio_to_reference``) and by each task's best baseline
    (``ratio_to_best_baseline``, named per task as ``best_baseline``); each result has its rank
    among all compared optimizers."""
    tasks = {}
    for task, per_task in comparison.results.items():
        first = next(iter(per_task.values()))
        tasks[task] = {
            "steps": first.steps,
            "score_window": first.window,
            "threshold": _num(comparison.thresholds[task]),
            "winner": comparison.winner(task),
            "best_baseline": comparison.best_baseline(task),
            "results": {name: result_json(r, comparison.rank(task, name)) for name, r in per_task.items()},
        }
    optimizers = [{"name": name, "formula": next(iter(comparison.results.values()))[name].formula}
                  for name in comparison.optimizers]
    data = {
        "protocol": comparison.protocol.to_json(),
        "score": "mean training loss over the last last_frac of steps, averaged over seeds; "
                 "null (diverged) if any seed met a non-finite loss",
        "threshold": "median of the compared optimizers' best scores on the task",
        "optimizers": optimizers,
        "candidates": list(comparison.candidates),
        "baselines": comparison.baselines,
        "tasks": tasks,
        "ratio_to_best_baseline": {
            task: {name: _num(comparison.ratio_to_best(task, name)) for name in comparison.optimizers}
            for task in comparison.tasks
        },
        "geomean_ratio_to_best_baseline": {
            name: _num(comparison.geomean_ratio_to_best(name)) for name in comparison.optimizers
        },
    }
    if reference in comparison.optimizers:
        data["reference"] = reference
        data["ratio_to_reference"] = {
            task: {name: _num(comparison.ratio(task, name, reference)) for name in comparison.optimizers}
            for task in comparison.tasks
        }
        data["geomean_ratio_to_reference"] = {
            name: _num(comparison.geomean_ratio(name, reference)) for name in comparison.optimizers
        }
    return data


def format_table(comparison, reference: str = "adam", highlight: str | None = None) -> str:
    """Per task, the optimizers by rank: best score, best lr, ratio to ``reference`` and to the
    task's best baseline, steps to the task's threshold and held-out metrics; then the
    geometric-mean ratios per optimizer. ``highlight`` (an optimizer name) is marked with ``*``."""
    lines = []
    width = max(9, *(len(name) for name in comparison.optimizers))
    has_ref = reference in comparison.optimizers
    for task, per_task in comparison.results.items():
        first = next(iter(per_task.values()))
        best = comparison.best_baseline(task)
        metric_keys = sorted({k for r in per_task.values() for k in (r.heldout or {})})
        lines.append(f"{task}  ({first.steps} steps, score = mean loss of last {first.window}, "
                     f"threshold {_fmt(comparison.thresholds[task])}, best baseline {best or '-'})")
        header = f"  {'rank':>4}  {'optimizer':<{width}}  {'score':>10}  {'best lr':>8}"
        header += f"  {'/' + reference:>9}" if has_ref else ""
        header += f"  {'/best':>9}  {'steps to thr':>12}" + "".join(f"  {k:>13}" for k in metric_keys)
        lines.append(header)
        ordered = sorted(per_task.values(), key=lambda r: (r.best_score, r.optimizer))
        for r in ordered:
            mark = "*" if r.optimizer == highlight else " "
            row = (f"{mark} {comparison.rank(task, r.optimizer):>4}  {r.optimizer:<{width}}  "
                   f"{_fmt(r.best_score):>10}  {_fmt(r.best_lr, '.3g'):>8}")
            if has_ref:
                row += f"  {_fmt(comparison.ratio(task, r.optimizer, reference), '.3g'):>9}"
            row += f"  {_fmt(comparison.ratio_to_best(task, r.optimizer), '.3g'):>9}"
            row += f"  {_fmt(r.steps_to_threshold, 'd', 'never'):>12}"
            row += "".join(f"  {_fmt((r.heldout or {}).get(k)):>13}" for k in metric_keys)
            lines.append(row)
        lines.append("")
    if len(comparison.tasks) > 1:
        lines.append("geometric mean over tasks of score / " + (f"{reference} score and of " if has_ref else "")
                     + "score / the task's best baseline score:")
        key = (lambda n: comparison.geomean_ratio(n, reference)) if has_ref else comparison.geomean_ratio_to_best
        for name in sorted(comparison.optimizers, key=lambda n: (key(n) or math.inf, n)):
            mark = "*" if name == highlight else " "
            ref_cell = f"  /{reference} {_fmt(comparison.geomean_ratio(name, reference), '.3g'):>9}" if has_ref else ""
            lines.append(f"{mark} {name:<{width}}{ref_cell}  /best {_fmt(comparison.geomean_ratio_to_best(name), '.3g'):>9}")
    return "\n".join(lines).rstrip() + "\n"


def plot_name(task: str) -> str:
    """File name of a task's loss plot: ``loss_<task>.png`` with unsafe characters replaced."""
    return "loss_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", task) + ".png"


def save_plots(comparison, directory: str | Path, highlight: str | None = None) -> list[Path]:
    """Write ``directory/loss_<task>.png`` per task: each optimizer's mean loss curve at its best
    lr (log y axis; symlog if a loss is not positive). Returns the paths written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for task, per_task in comparison.results.items():
        fig = Figure(figsize=(7, 4.5), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_subplot(1, 1, 1)
        lowest = math.inf
        for r in per_task.values():
            if r.curve is None:
                continue
            lowest = min(lowest, float(np.min(r.curve)))
            bold = r.optimizer == highlight
            ax.plot(np.arange(len(r.curve)), r.curve, lw=2.4 if bold else 1.1, zorder=3 if bold else 2,
                    label=f"{r.optimizer} (lr {r.best_lr:.3g})")
        ax.set_yscale("log" if lowest > 0 else "symlog")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss (mean over seeds)")
        ax.set_title(f"{task}: each optimizer at its best learning rate")
        diverged = [r.optimizer for r in per_task.values() if r.curve is None]
        if diverged:
            ax.text(0.01, 0.01, "diverged at every lr: " + ", ".join(diverged), transform=ax.transAxes, fontsize=8)
        if ax.lines:
            ax.legend(fontsize=7, loc="upper right")
        ax.grid(True, which="both", alpha=0.3)
        fig.subplots_adjust(left=0.11, right=0.98, bottom=0.11, top=0.93)  # fixed: tight_layout doubles the cost
        path = directory / plot_name(task)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png")
        written.append(path)
    return written
