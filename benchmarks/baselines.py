"""Tune every baseline on every validation task with the full protocol; write baselines.md/.json.

    python benchmarks/baselines.py [--steps N] [--workers 2]

Protocol: the default lr grid (16 values log-spaced from 1e-4 to 10), seeds 0, 1, 2, score = mean
training loss of the last 10% of steps averaged over seeds (diverged = inf). Each task runs its
own default horizon (about 8-9 minutes on two idle cores); --steps N caps it, and the output says so.
Runs are spread over --workers processes with one torch thread each.
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
TASK_ORDER_HINT = ("cnn_digits", "mlp_digits_relu", "mlp_digits_tanh", "logreg_cancer")


def _tune_job(task_name: str, baseline: str, steps: int | None):
    import torch

    torch.set_num_threads(1)
    from dsr_l2o.evaluation import EvalProtocol, get_baseline, tune
    from dsr_l2o.tasks import get_task

    task = get_task(task_name)
    protocol = EvalProtocol(steps=None if steps is None else min(steps, task.steps))
    cpu = time.process_time()
    result = tune(get_baseline(baseline), task, protocol)
    return result, time.process_time() - cpu


def _markdown(comparison, steps_note: str, seconds: float, cpu: float, workers: int, load: str) -> str:
    from dsr_l2o.evaluation import BASELINE_NAMES

    lines = [
        "# Tuned baselines on the validation tasks",
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
        "nine baselines' best scores.",
        "",
        f"Horizon: {steps_note}.",
        "",
        f"Wall time {seconds:.0f} s with {workers} worker process(es), one torch thread each "
        f"({cpu:.0f} CPU-seconds in the training runs; {load}).",
        "",
        "## Best score (best lr) per task",
        "",
        "| task | " + " | ".join(BASELINE_NAMES) + " | winner |",
        "|---" * (len(BASELINE_NAMES) + 2) + "|",
    ]
    for task in comparison.tasks:
        cells = []
        for name in BASELINE_NAMES:
            r = comparison.results[task][name]
            text = "diverged" if r.diverged else f"{r.best_score:.3g} ({r.best_lr:g})"
            cells.append(f"**{text}**" if name == comparison.winner(task) else text)
        lines.append(f"| {task} | " + " | ".join(cells) + f" | {comparison.winner(task)} |")
    lines += ["", "## Score / tuned Adam score", "",
              "| task | " + " | ".join(BASELINE_NAMES) + " |", "|---" * (len(BASELINE_NAMES) + 1) + "|"]
    for task in comparison.tasks:
        ratios = [comparison.ratio(task, name, "adam") for name in BASELINE_NAMES]
        lines.append(f"| {task} | " + " | ".join("-" if r is None else f"{r:.3g}" for r in ratios) + " |")
    geo = [comparison.geomean_ratio(name, "adam") for name in BASELINE_NAMES]
    lines.append("| **geometric mean** | " + " | ".join("-" if g is None else f"{g:.3g}" for g in geo) + " |")
    wins = {}
    for task in comparison.tasks:
        wins.setdefault(comparison.winner(task), []).append(task)
    lines += ["", "## Who wins where", ""]
    lines += [f"- **{name}**: {', '.join(tasks)}" for name, tasks in wins.items()]
    lines += ["", "## Full table", "", "```", comparison.table("adam").rstrip(), "```", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help="cap on each task's horizon (default: none)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=HERE / "baselines")
    args = parser.parse_args(argv)

    from dsr_l2o.atomic import write_json, write_text
    from dsr_l2o.evaluation import BASELINE_NAMES, Comparison, EvalProtocol, loss_threshold
    from dsr_l2o.tasks import VALIDATION_TASKS, get_task

    horizons = {name: get_task(name).steps for name in VALIDATION_TASKS}
    order = sorted(VALIDATION_TASKS, key=lambda t: TASK_ORDER_HINT.index(t) if t in TASK_ORDER_HINT else 99)
    jobs = [(task, name, args.steps) for task in order for name in BASELINE_NAMES]
    cpu = 0.0
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        futures = {job: pool.submit(_tune_job, *job) for job in jobs}
        done = 0
        results = {}
        for job, future in futures.items():
            results[job[:2]], job_cpu = future.result()
            cpu += job_cpu
            done += 1
            print(f"[{done}/{len(jobs)}] {job[0]} {job[1]}: {results[job[:2]].best_score:.4g} "
                  f"(lr {results[job[:2]].best_lr}) {time.perf_counter() - start:.0f}s", file=sys.stderr)
    seconds = time.perf_counter() - start
    load = f"load average {load_before:.1f} at start, {os.getloadavg()[1]:.1f} over the last 5 min at the end"

    per_task, thresholds = {}, {}
    for task in VALIDATION_TASKS:
        per_task[task] = {name: results[(task, name)] for name in BASELINE_NAMES}
        thresholds[task] = loss_threshold(list(per_task[task].values()))
        for r in per_task[task].values():
            r.set_threshold(thresholds[task])
    comparison = Comparison(EvalProtocol(steps=args.steps), per_task, thresholds)

    used = {t: h if args.steps is None else min(h, args.steps) for t, h in horizons.items()}
    capped = [f"{t} {h} -> {used[t]}" for t, h in horizons.items() if used[t] < h]
    steps_note = ("each task runs its own default horizon ("
                  + ", ".join(f"{t} {h}" for t, h in used.items()) + " steps)")
    if capped:
        steps_note += f"; SHORTENED by --steps {args.steps} to fit the time budget: {', '.join(capped)}"
    data = comparison.to_json("adam")
    data["horizon"] = used
    data["note"] = steps_note
    data["wall_seconds"] = round(seconds, 1)
    data["cpu_seconds"] = round(cpu, 1)
    data["machine_load"] = load
    data["workers"] = args.workers
    write_json(args.out.with_suffix(".json"), data)
    write_text(args.out.with_suffix(".md"), _markdown(comparison, steps_note, seconds, cpu, args.workers, load))
    print(f"wrote {args.out.with_suffix('.md')} and .json in {seconds:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
