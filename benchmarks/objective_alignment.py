"""Does the search's meta-objective rank update rules the way the fair protocol does?

For a handful of fixed formulas of the default grammar this measures two things, in one process:

* **validation**: the fair protocol (`dsr-l2o evaluate`'s defaults: 16 lrs from 1e-4 to 10, a best
  lr at an edge followed past it, seeds 0-2) on the seven validation tasks, as ratios to tuned Adam,
  with tuned SGD, momentum and Adam run here as the baselines;
* **meta-objective**: the quantity the search descends (`searches/default.yaml`: root
  normalisation, horizon 100, truncations of 20 steps, the `mixed` training family), with only the
  step size meta-trained for 200 meta-steps, as in the search's refit; the mean meta-loss over the
  last 100 meta-steps. Also with one untruncated unroll of the whole horizon (no short-horizon
  truncation);
* **training family, tuned**: the fair protocol's idea on the search's own training tasks: 20 tasks
  of the `mixed` family, 100 steps, each task at its best of 12 lrs (1e-4 to 30), scored by the
  mean log loss (relative to the first) over the last 10 steps. This separates the objective's
  mechanics (shared step size, truncation) from the choice of training tasks;
* **hard quadratics, tuned**: 12 tasks of the `hard_quadratics` family (condition 1e2 to 1e4; the
  `quadratics` family's is 1 to 1e3), 200 steps, scored over the last 20 steps, each task at the
  rule's best lr on a fine grid (eight per decade) around its own: the grow stage's score.

A search can only find what its objective prefers: a rule the protocol ranks first but the
objective ranks low is out of the search's reach. Writes objective_alignment.md beside this file.
Usage: python benchmarks/objective_alignment.py [--workers 2]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
FORMULAS = ("g", "sign(m)", "m", "m_tilde", "exp(sign(g) * sign(m)) * m", "m + 0.25 * sign(g) * abs(m)",
            "m + 0.2 * sign(g) * abs(m)")  # the last: the default search's formula (its grow stage)
BASELINES = ("sgd", "momentum", "adam")
META_STEPS = 200


def _tune(job):
    import torch

    torch.set_num_threads(1)
    from dsr_l2o.evaluation import EvalProtocol, formula_spec, get_baseline, tune
    from dsr_l2o.tasks import get_task

    name, task_name = job
    spec = get_baseline(name) if name in BASELINES else formula_spec(name)
    result = tune(spec, get_task(task_name), EvalProtocol())
    return name, task_name, result.best_score, result.best_lr


def _meta(job):
    import torch
    from torch import nn

    torch.set_num_threads(1)
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.search.config import load_config
    from dsr_l2o.search.meta_train import MetaTrainer
    from dsr_l2o.tasks import get_family

    text, unroll = job
    formula = parse_formula(text)
    settings = load_config(None, meta_steps=META_STEPS, entropy_weight=0.0, unroll=unroll,
                           checkpoint_every=META_STEPS)

    class FixedRule(nn.Module):
        """One formula with a learnable step size, shaped like a RelaxedRule for the MetaTrainer."""

        def __init__(self):
            super().__init__()
            self.grammar = formula.grammar
            self.operand_names = sorted(formula.operands)
            self.log_lr = nn.Parameter(torch.tensor(math.log(settings.init_lr)))

        def forward(self, values, temperature, scales=None, generator=None):
            return self.grammar.evaluate(formula.expr, values)

        def lr(self):
            return self.log_lr.exp()

        def slots(self):
            return []

    trainer = MetaTrainer(FixedRule(), get_family(settings.tasks), settings, torch.device("cpu"),
                          episode_offset=10_000)  # tasks the search's own meta-training does not see first
    losses = [trainer.step()["meta_loss"] for _ in range(META_STEPS)]
    tail = [x for x in losses[META_STEPS // 2:] if x is not None]
    return text, unroll, sum(tail) / len(tail) if tail else math.inf


TRAIN_LRS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
FAMILIES = {"mixed": (20, 100), "hard_quadratics": (12, 200)}  # tasks, steps


def _family_tuned(job):
    import numpy as np
    import torch

    torch.set_num_threads(1)
    from dsr_l2o.evaluation import formula_spec
    from dsr_l2o.evaluation.protocol import train
    from dsr_l2o.search.meta_train import episode_seed
    from dsr_l2o.tasks import get_family

    text, name = job
    count, steps = FAMILIES[name]
    family = get_family(name)
    if name == "hard_quadratics":
        return text, name, _grow_score(text, [family.sample(episode_seed(0, 10_000 + i)) for i in range(count)], steps)
    spec, finals = formula_spec(text), []
    for index in range(count):
        seed = episode_seed(0, 10_000 + index)
        task, best = family.sample(seed), math.inf
        for lr in TRAIN_LRS:
            run = train(spec, task, lr, seed, steps)
            if not run.diverged:
                logs = np.log(np.maximum(run.losses, 1e-30)) - math.log(max(run.losses[0], 1e-30))
                best = min(best, float(np.mean(logs[-steps // 10:])))
        finals.append(best)
    return text, name, float(np.mean(finals))


def _grow_score(text, tasks, steps):
    """The grow stage's score: best final log loss per task on a fine lr grid around the rule's own."""
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.search.grow import lr_windows
    from dsr_l2o.search.quadratic_batch import QuadraticBatch

    formula = parse_formula(text)
    batch = QuadraticBatch(tasks, steps)
    return float(batch.tuned_scores(formula.grammar, formula.expr, lr_windows(batch, formula))[0])


def _spearman(a: list[float], b: list[float]) -> float:
    def ranks(xs):
        order = sorted(range(len(xs)), key=xs.__getitem__)
        out = [0.0] * len(xs)
        for rank, i in enumerate(order):
            out[i] = float(rank)
        return out

    ra, rb = ranks(a), ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    return cov / math.sqrt(sum((x - ma) ** 2 for x in ra) * sum((y - mb) ** 2 for y in rb))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args()
    from dsr_l2o.search.config import load_config
    from dsr_l2o.tasks import VALIDATION_TASKS

    from machine import cpu_name

    default = load_config(None)
    started = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        meta_jobs = [(f, u) for f in FORMULAS for u in (default.unroll, default.horizon)]
        meta = {(f, u): v for f, u, v in pool.map(_meta, meta_jobs)}
        family = {(f, n): v for f, n, v in pool.map(_family_tuned, [(f, n) for f in FORMULAS for n in FAMILIES])}
        tuned = {(n, t): (s, lr) for n, t, s, lr in
                 pool.map(_tune, [(n, t) for n in FORMULAS + BASELINES for t in VALIDATION_TASKS])}
    seconds = time.perf_counter() - started

    def ratio(name, task):
        score, adam = tuned[(name, task)][0], tuned[("adam", task)][0]
        return score / adam if math.isfinite(score) else math.inf

    def geomean(name):
        logs = [math.log(ratio(name, t)) for t in VALIDATION_TASKS]
        return math.exp(sum(logs) / len(logs)) if all(map(math.isfinite, logs)) else math.inf

    def beats(name, task):
        return tuned[(name, task)][0] < min(tuned[(b, task)][0] for b in ("sgd", "momentum"))

    short = [t.replace("_", " ") for t in VALIDATION_TASKS]
    lines = ["# Objective alignment: the search's meta-objective against the fair protocol", "",
             "Written by `python benchmarks/objective_alignment.py`; do not edit by hand.", "",
             f"Machine: {cpu_name()}, {args.workers} worker process(es), one torch thread each; "
             f"wall time {seconds:.0f} s; {dt.date.today().isoformat()}.", "",
             "## Fair protocol on the validation tasks (score / tuned Adam; * = beats tuned SGD and momentum)", "",
             "| formula | " + " | ".join(short) + " | geomean | beats SGD and momentum on |",
             "|---|" + "---|" * (len(short) + 2)]
    for name in BASELINES + FORMULAS:
        cells = [f"{ratio(name, t):.3g}{'*' if name not in BASELINES and beats(name, t) else ''}"
                 for t in VALIDATION_TASKS]
        count = "-" if name in BASELINES else f"{sum(beats(name, t) for t in VALIDATION_TASKS)}/{len(VALIDATION_TASKS)}"
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {geomean(name):.3g} | {count} |")
    lines += ["", f"## Meta-objective (lower is preferred by the search; step size meta-trained, {META_STEPS} meta-steps)", "",
              f"| formula | unroll {default.unroll} (the default) | unroll {default.horizon} (whole horizon) "
              "| training family, tuned lr | hard quadratics, tuned lr | protocol geomean |",
              "|---|---|---|---|---|---|"]
    for name in FORMULAS:
        lines.append(f"| {name} | {meta[(name, default.unroll)]:.3f} | {meta[(name, default.horizon)]:.3f} "
                     f"| {family[(name, 'mixed')]:.3f} | {family[(name, 'hard_quadratics')]:.3f} | {geomean(name):.3g} |")
    proto = [geomean(f) for f in FORMULAS]
    lines += ["", "Spearman rank correlation between the meta-objective and the protocol's geometric mean "
              "(1 = the search prefers exactly what the protocol rewards):", ""]
    for unroll in (default.unroll, default.horizon):
        lines.append(f"- meta-objective, unroll {unroll}: {_spearman([meta[(f, unroll)] for f in FORMULAS], proto):+.2f}")
    lines.append(f"- training family with a tuned lr per task: "
                 f"{_spearman([family[(f, 'mixed')] for f in FORMULAS], proto):+.2f}")
    lines.append(f"- hard quadratics with a tuned lr per task: "
                 f"{_spearman([family[(f, 'hard_quadratics')] for f in FORMULAS], proto):+.2f}")
    (HERE / "objective_alignment.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
