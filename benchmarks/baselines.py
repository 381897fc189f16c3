"""Tune every baseline on every task of a split with the full protocol; write baselines.md/.json.

    python benchmarks/baselines.py [--split builtin|validation|test] [--steps N] [--workers 2] [--tasks a,b] [--cache DIR]

Splits: ``builtin`` (the built-in validation tasks, ``dsr_l2o.tasks.VALIDATION_TASKS``; written to
baselines.md), ``validation`` and ``test`` (the suite's ``SUITE_VALIDATION`` / ``SUITE_TEST``; written
to test_baselines.md for the test split, which the README and the search benchmarks quote).

Protocol: the default lr grid (16 values log-spaced from 1e-4 to 10), seeds 0, 1, 2, score = mean
training loss of the last 10% of steps averaged over seeds (diverged = inf). Each task runs its
own default horizon; --steps N caps it and --tasks picks a subset of the validation tasks, and the
output says so. Every baseline whose library is installed runs (the modern ones need
``pip install -e ".[baselines]"``; the output lists any left out). Each task's baselines train as one batch of the engine
(``dsr_l2o.engine.tune_batched``, checked against the sequential protocol in tests/test_engine.py);
tasks are spread over --workers processes with one torch thread each. With --cache DIR each tuned result is kept as DIR/TASK__NAME.json
and a rerun reuses it, so an interrupted run resumes and the report can be rewritten without training.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

HERE = Path(__file__).resolve().parent
# heaviest first, so the slow tasks do not end up alone on one worker at the end
TASK_ORDER_HINT = ("cnn_digits", "mlp_digits_relu", "mlp_digits_tanh", "logreg_cancer", "test_attention", "test_cnn",
                   "val_attention", "val_cnn")


def _tune_job(task_name: str, baselines: list[str], steps: int | None, cache: Path | None):
    """Tune ``baselines`` on one task with the batched engine; reuse and fill the cache per baseline."""
    import json

    import torch

    torch.set_num_threads(1)
    from dsr_l2o.atomic import write_json
    from dsr_l2o.engine import tune_batched
    from dsr_l2o.evaluation import EvalProtocol, TuneResult, get_baseline
    from dsr_l2o.tasks import get_task

    out, todo = {}, []
    for baseline in baselines:
        path = None if cache is None else cache / f"{task_name}__{baseline}.json"
        if path is not None and path.is_file():
            data = json.loads(path.read_text())
            out[baseline] = (TuneResult.from_json(data["result"]), data["cpu_seconds"], True)
        else:
            todo.append(baseline)
    if todo:
        task = get_task(task_name)
        protocol = EvalProtocol(steps=None if steps is None else min(steps, task.steps))
        cpu = time.process_time()
        results = tune_batched([get_baseline(b) for b in todo], task, protocol)
        share = (time.process_time() - cpu) / len(todo)
        for baseline, result in zip(todo, results):
            out[baseline] = (result, share, False)
            if cache is not None:
                write_json(cache / f"{task_name}__{baseline}.json", {"result": result.to_json(), "cpu_seconds": share})
    return out


def _cell(value, spec=".3g") -> str:
    return "-" if value is None else ("diverged" if value == float("inf") else format(value, spec))


def _markdown(comparison, notes: list[str], seconds: float, cpu: float, workers: int, load: str,
              split: str = "builtin") -> str:
    names = comparison.optimizers
    title = {"builtin": "the built-in validation tasks", "validation": "the suite's validation tasks",
             "test": "the suite's test tasks"}[split]
    lines = [
        f"# Tuned baselines on {title}",
        "",
        "Written by `python benchmarks/baselines.py`; do not edit by hand.",
        "",
        f"Protocol: learning rates {', '.join(f'{lr:g}' for lr in comparison.protocol.lrs)} "
        f"(a best lr at an edge is followed past it, up to {comparison.protocol.extend_edges} more grid steps, "
        "while the score improves); "
        f"seeds {', '.join(map(str, comparison.protocol.seeds))}; score = mean training loss over the "
        "last 10% of steps, averaged over seeds; a run with a non-finite loss scores inf (diverged). "
        "Steps to threshold: first step at which the trailing mean loss (same window as the score) "
        "of the seed-averaged curve at the best lr reaches the task's threshold, the median of the "
        f"{len(names)} baselines' best scores. Baselines and their settings: `dsr_l2o/evaluation/baselines.py` "
        "and docs/baselines.md.",
        "",
        *[f"{note}" for note in notes],
        "",
        f"Wall time {seconds:.0f} s in all with {workers} worker process(es), one torch thread each "
        f"({cpu:.0f} CPU-seconds in the training runs; {load}).",
        "",
        "## Best baseline per task",
        "",
        "| task | best baseline | its score (lr) | adam's score | best / adam | runner-up |",
        "|---|---|---|---|---|---|",
    ]
    for task in comparison.tasks:
        best = comparison.best_baseline(task)
        ordered = sorted(names, key=lambda n: (comparison.results[task][n].best_score, n))
        r = comparison.results[task][best] if best else None
        lines.append(f"| {task} | {best or '-'} | {_cell(r and r.best_score)} ({_cell(r and r.best_lr, 'g')}) | "
                     f"{_cell(comparison.results[task]['adam'].best_score)} | "
                     f"{_cell(comparison.ratio(task, best, 'adam') if best else None)} | "
                     f"{next((n for n in ordered if n != best), '-')} |")
    from dsr_l2o.evaluation.ratios import FLOOR

    for task in comparison.tasks:
        zero = [n for n in names if comparison.results[task][n].best_score <= FLOOR]
        if zero:
            lines += ["", f"On {task}, {' and '.join(zero)} reach a training loss of at most {FLOOR:g} (in float32, "
                      f"exactly 0). Ratios clamp scores at {FLOOR:g} (`dsr_l2o.evaluation.ratios`), so every other "
                      f"baseline's score / best there is about {1 / FLOOR:.0e} times its score, and that task "
                      "dominates the geometric means of score / best baseline; the ranks are the robust view."]
    lines += ["", "## Score / tuned Adam score (rank among all baselines)", "",
              "| baseline | " + " | ".join(comparison.tasks) + " | geometric mean | / best, geometric mean |",
              "|---" * (len(comparison.tasks) + 3) + "|"]
    order = sorted(names, key=lambda n: (comparison.geomean_ratio(n, "adam") or float("inf"), n))
    for name in order:
        cells = [f"{_cell(comparison.ratio(t, name, 'adam'))} ({comparison.rank(t, name)})" for t in comparison.tasks]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {_cell(comparison.geomean_ratio(name, 'adam'))} | "
                     f"{_cell(comparison.geomean_ratio_to_best(name))} |")
    lines += ["", "## Best score (best lr) per task", "",
              "| task | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for task in comparison.tasks:
        cells = []
        for name in names:
            r = comparison.results[task][name]
            text = "diverged" if r.diverged else f"{r.best_score:.3g} ({r.best_lr:g})"
            cells.append(f"**{text}**" if name == comparison.best_baseline(task) else text)
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    wins = {}
    for task in comparison.tasks:
        wins.setdefault(comparison.best_baseline(task), []).append(task)
    lines += ["", "## Who wins where", ""]
    lines += [f"- **{name}**: {', '.join(tasks)}" for name, tasks in wins.items()]
    lines += ["", "## Full table", "", "```", comparison.table("adam").rstrip(), "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="cap on each task's horizon (default: none)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--tasks", default=None, help="comma-separated subset of the validation tasks (default: all)")
    parser.add_argument("--cache", type=Path, default=None, help="keep/reuse each tuned result here")
    parser.add_argument("--split", choices=("builtin", "validation", "test"), default="builtin")
    parser.add_argument("--out", type=Path, default=None, help="default: baselines (builtin) or SPLIT_baselines")
    args = parser.parse_args(argv)
    if args.out is None:
        args.out = HERE / ("baselines" if args.split == "builtin" else f"{args.split}_baselines")

    from dsr_l2o.atomic import write_json, write_text
    from dsr_l2o.evaluation import Comparison, EvalProtocol, loss_threshold
    from dsr_l2o.evaluation.baselines import expand_group
    from dsr_l2o.tasks import VALIDATION_TASKS, get_task
    from dsr_l2o.tasks.suite import SUITE_TEST, SUITE_VALIDATION

    names, missing = expand_group("all")
    split = {"builtin": VALIDATION_TASKS, "validation": SUITE_VALIDATION, "test": SUITE_TEST}[args.split]
    tasks = list(split) if args.tasks is None else [t.strip() for t in args.tasks.split(",")]
    left_out = [t for t in split if t not in tasks]
    horizons = {name: get_task(name).steps for name in tasks}
    order = sorted(tasks, key=lambda t: TASK_ORDER_HINT.index(t) if t in TASK_ORDER_HINT else 99)
    jobs = [(task, names, args.steps, args.cache) for task in order]
    cpu = 0.0
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        futures = {job[0]: pool.submit(_tune_job, *job) for job in jobs}
        computed = 0
        results = {}
        for done, (task, future) in enumerate(futures.items(), 1):
            for name, (result, job_cpu, cached) in future.result().items():
                results[(task, name)] = result
                cpu += job_cpu
                computed += not cached
            print(f"[{done}/{len(jobs)}] {task}: {len(names)} baselines, {time.perf_counter() - start:.0f}s",
                  file=sys.stderr)
    seconds = time.perf_counter() - start
    load = f"load average {load_before:.1f} at start, {os.getloadavg()[1]:.1f} over the last 5 min at the end"
    if args.cache is not None:  # the cache may have been filled over several runs: report them all
        import json

        run_file = args.cache / "_run.json"
        runs = json.loads(run_file.read_text())["runs"] if run_file.is_file() else []
        if computed:
            runs.append({"wall_seconds": round(seconds, 1), "jobs": computed, "machine_load": load})
            write_json(run_file, {"runs": runs})
        seconds = sum(run["wall_seconds"] for run in runs)
        load = "; ".join(f"run {i + 1} ({run['jobs']} tuning jobs, {run['wall_seconds']:.0f} s): {run['machine_load']}"
                         for i, run in enumerate(runs))

    per_task, thresholds = {}, {}
    for task in tasks:
        per_task[task] = {name: results[(task, name)] for name in names}
        thresholds[task] = loss_threshold(list(per_task[task].values()))
        for r in per_task[task].values():
            r.set_threshold(thresholds[task])
    comparison = Comparison(EvalProtocol(steps=args.steps), per_task, thresholds)

    used = {t: h if args.steps is None else min(h, args.steps) for t, h in horizons.items()}
    capped = [f"{t} {h} -> {used[t]}" for t, h in horizons.items() if used[t] < h]
    steps_note = ("Horizon: each task runs its own default horizon ("
                  + ", ".join(f"{t} {h}" for t, h in used.items()) + " steps)")
    if capped:
        steps_note += f"; SHORTENED by --steps {args.steps} to fit the time budget: {', '.join(capped)}"
    notes = [steps_note + "."]
    if left_out:
        notes += ["", f"Tasks LEFT OUT of this run to fit the time budget (--tasks): {', '.join(left_out)}."]
    if missing:
        notes += ["", f"Baselines LEFT OUT because their library is not installed: {', '.join(missing)}."]
    data = comparison.to_json("adam")
    data["horizon"] = used
    data["results"] = {t: {n: r.to_json() for n, r in per_task[t].items()} for t in tasks}
    data["note"] = " ".join(n for n in notes if n)
    data["wall_seconds"] = round(seconds, 1)
    data["cpu_seconds"] = round(cpu, 1)
    data["machine_load"] = load
    data["workers"] = args.workers
    write_json(args.out.with_suffix(".json"), data)
    write_text(args.out.with_suffix(".md"), _markdown(comparison, notes, seconds, cpu, args.workers, load, args.split))
    print(f"wrote {args.out.with_suffix('.md')} and .json in {seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
