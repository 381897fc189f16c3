"""Throughput of the batched engine against the protocol's sequential trainer.

For each task, P=16 formulas (a panel of published and found rules) x L=16 learning rates (the
protocol's default grid) x S=1 seed are trained by :func:`dsr_l2o.engine.train_formulas` as one
batch, and a fixed random sample of the same 256 (formula, lr) runs is trained one after another
by :func:`dsr_l2o.evaluation.protocol.train` (SymbolicOptimizer). Throughput is training runs per
second; the ratio is batched / sequential. A second table does the same for torch.optim.Adam at
the 16 lrs (:func:`dsr_l2o.engine.train_optimizers`, stacked path). Sequential and batched timings
alternate in one process; each reported ratio is the median over repeats of the per-repeat ratio.
A third table times a whole comparison: ``protocol.tune`` for each of the 9 baselines in turn
against one ``tune_batched`` call for all of them (16 lrs, 3 seeds, edge extension), and reports
the largest difference in best score between the two. Writes ``benchmarks/engine_throughput.md``.

Usage: ``python benchmarks/engine_throughput.py [--steps 50] [--repeats 3] [--sample 12] [--threads 1]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dsr_l2o.engine import train_formulas, train_optimizers, tune_batched
from dsr_l2o.engine.explicit import explicit_loss
from dsr_l2o.engine.vmap_loss import vmap_unsupported
from dsr_l2o.evaluation.baselines import TORCH_BASELINES, OptimizerSpec, formula_spec, get_baselines
from dsr_l2o.evaluation.protocol import DEFAULT_LRS, EvalProtocol, train, tune
from dsr_l2o.formula import parse_formula
from dsr_l2o.tasks import get_task, list_tasks
from machine import cpu_name

FORMULAS = ["g", "m", "m_hat", "m_hat / (sqrt(v_hat) + 1e-8)", "g / (sqrt(v) + 1e-8)", "sign(g)",
            "sign(m)", "sign(m + 0.1 * g)", "exp(sign(g) * sign(m)) * g",
            "(1 + sign(g) * sign(m)) * g", "g_tilde", "m_tilde",
            "m_tilde + 0.5 * sign(g) * abs(m_tilde)", "softsign(m_tilde)",
            "sign(g) * sqrt(abs(g))", "m + 0.2 * sign(g) * abs(m)"]
SUITE = ["val_attention", "val_cnn", "val_deep_mlp", "val_wide_mlp", "val_autoencoder"]
TUNE_TASKS = ["quadratic_illcond", "rosenbrock_10d", "mlp_digits_tanh", "val_attention"]


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def loss_path(task) -> str:
    if explicit_loss(task) is not None:
        return "hand-batched"
    return "loop (vmap failed)" if vmap_unsupported(task) else "vmap"


def formula_rates(task, steps: int, sample: int, rng: random.Random):
    formulas = [parse_formula(f) for f in FORMULAS]
    specs = [formula_spec(f) for f in formulas]
    members = [(k, lr) for k in range(len(formulas)) for lr in DEFAULT_LRS]
    picked = rng.sample(members, sample)
    batched = timed(lambda: train_formulas(formulas, task, members, (0,), steps))
    sequential = timed(lambda: [train(specs[k], task, lr, 0, steps) for k, lr in picked])
    return len(members) / batched, sample / sequential


def adam_rates(task, steps: int, sample: int, rng: random.Random):
    spec = OptimizerSpec("adam", TORCH_BASELINES["adam"])
    members = [(0, lr) for lr in DEFAULT_LRS]
    picked = rng.sample(members, min(sample, len(members)))
    batched = timed(lambda: train_optimizers([spec.make], task, members, (0,), steps))
    sequential = timed(lambda: [train(spec, task, lr, 0, steps) for _, lr in picked])
    return len(members) / batched, len(picked) / sequential


def measure(names, rates, args):
    rows = []
    for name in names:
        task = get_task(name)
        n = sum(p.numel() for p in task.init(0))
        rng = random.Random(0)
        rates(task, 2, 2, random.Random(1))  # warm-up: data, vmap and lowering caches
        ratios, batched, sequential = [], [], []
        for _ in range(args.repeats):
            b, s = rates(task, args.steps, args.sample, rng)
            ratios.append(b / s)
            batched.append(b)
            sequential.append(s)
        rows.append((name, n, loss_path(task), statistics.median(sequential), statistics.median(batched),
                     statistics.median(ratios), min(ratios), max(ratios)))
        print(f"{name}: {rows[-1][-3]:.1f}x", flush=True)
    return rows


def tune_rows(steps: int) -> list[str]:
    """Whole-comparison timing: sequential tune per baseline vs one tune_batched call."""
    protocol = EvalProtocol(steps=steps)
    specs = get_baselines(None)
    lines = ["| task | sequential s | batched s | ratio | largest relative difference in best score | same best lr |",
             "|---|---:|---:|---:|---:|---|"]
    for name in TUNE_TASKS:
        task = get_task(name)
        tune_batched(specs, task, EvalProtocol(lrs=(0.01,), seeds=(0,), steps=2))  # warm-up
        start = time.perf_counter()
        sequential = [tune(spec, task, protocol) for spec in specs]
        mid = time.perf_counter()
        batched = tune_batched(specs, task, protocol)
        end = time.perf_counter()
        diffs = [abs(a.best_score - b.best_score) / abs(a.best_score) for a, b in zip(sequential, batched)
                 if a.best_score not in (0.0, float("inf"))]
        same = all(a.best_lr == b.best_lr for a, b in zip(sequential, batched))
        lines.append(f"| {name} | {mid - start:.1f} | {end - mid:.1f} | **{(mid - start) / (end - mid):.1f}x** | "
                     f"{max(diffs):.1e} | {'yes' if same else 'no'} |")
        print(lines[-1], flush=True)
    return lines


def table(rows) -> list[str]:
    lines = ["| task | params | batched loss | sequential runs/s | batched runs/s | ratio (median) | min..max |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for name, n, path, seq, bat, ratio, lo, hi in rows:
        lines.append(f"| {name} | {n:,} | {path} | {seq:.2f} | {bat:.2f} | **{ratio:.1f}x** | {lo:.1f}..{hi:.1f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sample", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".md")))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    builtin = [name for name, _ in list_tasks()]
    formula_rows = measure(builtin + SUITE, formula_rates, args)
    adam_rows = measure(builtin, adam_rates, args)
    tune_lines = tune_rows(args.steps)
    below = [r[0] for r in formula_rows if r[5] < 20]
    lines = [
        "# Batched engine throughput vs the sequential protocol trainer", "",
        f"Written by `benchmarks/engine_throughput.py`. Date: {dt.datetime.utcnow():%Y-%m-%d %H:%M} UTC.",
        f"Machine: {cpu_name()} ({os.cpu_count()} logical CPUs, shared with other jobs; torch threads "
        f"{args.threads}); Python {platform.python_version()}, torch {torch.__version__}.",
        f"Every run is {args.steps} steps at one learning rate from `task.init(0)`. Batched: all "
        f"{len(FORMULAS)} formulas x {len(DEFAULT_LRS)} lrs x 1 seed = {len(FORMULAS) * len(DEFAULT_LRS)} "
        f"runs in one `train_formulas` call. Sequential: {args.sample} of those runs (a fixed random "
        "sample, diverging ones included, which stop early) through `protocol.train` with "
        "SymbolicOptimizer. Ratio = batched runs/s / sequential runs/s, median over "
        f"{args.repeats} interleaved repeats (min..max shown).", "",
        "Formulas: " + ", ".join(f"`{f}`" for f in FORMULAS) + ".", "",
        "## Formulas (P=16 x L=16 x S=1)", "", *table(formula_rows), "",
        "## torch.optim.Adam (16 lrs; stacked path: one instance at lr 1 for all runs, each run scaled by its lr)", "",
        *table(adam_rows), "",
        f"## A whole comparison: the {len(get_baselines(None))} baselines tuned on the default grid "
        f"(16 lrs, seeds 0-2, edge extension, {args.steps} steps)", "",
        "Sequential: `protocol.tune` per baseline; batched: one `tune_batched` call (formula "
        "baselines lion/powersign/addsign as formula batches, the torch.optim ones stacked).", "",
        *tune_lines, "",
        "## Reading", "",
        "Tasks below 20x: " + (", ".join(below) if below else "none") + ". Small tasks (quadratics, "
        "valleys, logistic models) are dominated by per-op overhead, which batching removes; "
        "tasks with 128-example minibatches, CNNs and the attention model are compute-bound on a "
        "CPU core, so batching only removes the overhead share. Adam batches only its 16 lrs here (16 runs, "
        "not 256), so it gains less than the formula batch.",
    ]
    fd, tmp = tempfile.mkstemp(dir=Path(args.out).parent, suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, args.out)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
