"""Does the search's meta-objective rank update rules as the fair protocol does on the test tasks?

For a panel of published rules (written in one grammar, ``grammars/published.yaml`` plus Lion's
slow momentum and the operands of ``grammars/mars.yaml``, which the default search reads), in one
process:

* **meta-objective**: the reward the default search's population estimator (``estimator: population``) gives a
  formula, averaged over tasks sampled from the ``suite`` meta-training family: the bounded log
  of the best mean final loss over ``population_lrs`` relative to the task's initial loss;
* **test**: the fair protocol (16 lrs from 1e-4 to 10, a best lr at an edge followed past it,
  seeds 0-2) on the suite's test tasks (``SUITE_TEST``, never used to select), as the geometric
  mean over tasks of the rule's tuned score divided by the per-task best of the panel.

The Spearman correlation between the two rankings says whether the search optimises what the
report measures. Writes objective_alignment.md beside this file. (The truncated-backprop objective
of earlier versions measured -0.29: objective_alignment.md at commit a6a3b3d.)
Usage: python benchmarks/objective_alignment.py [--tasks 20] [--seeds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PANEL = {
    "SGD": "g", "momentum": "m", "Nesterov-like": "m + g", "signSGD": "sign(g)", "Signum": "sign(m)",
    "RMSprop": "g / (sqrt(v99) + 1e-8)", "normalised SGD": "g_tilde", "Adam": "m_tilde",
    "Lion": "sign(m99 + 0.1 * g)", "PowerSign": "exp(sign(g) * sign(m)) * g", "AddSign": "(1 + sign(g) * sign(m)) * g",
    "Grams": "sign(g) * abs(m_tilde)", "cautious momentum": "m * (1 + sign(g) * sign(m)) / 2",
    "soft cautious momentum": "m + 0.5 * sign(g) * abs(m)", "cautious Adam": "m_tilde * (1 + sign(g) * sign(m_tilde)) / 2",
    "soft cautious Adam": "m_tilde + 0.5 * sign(g) * abs(m_tilde)", "LaProp": "laprop",
    "AdaBelief": "m_hat / (sqrt(s_hat) + 1e-8)", "MARS (Adam's betas)": "k_tilde",
}
MARS_OPERANDS = ("g_prev", "c", "c_norm", "k", "k_hat", "ku_hat", "k_tilde")


def grammar():
    from dsr_l2o.distill.missing import with_operands
    from dsr_l2o.grammar import load_grammar
    from dsr_l2o.resources import data_path

    text = data_path("grammars", "published.yaml").read_text(encoding="utf-8")
    text = text.replace("operands:\n", "operands:\n  m99: {ema: g, beta: 0.99}\n", 1).replace("name: published", "name: panel")
    mars = load_grammar(data_path("grammars", "mars.yaml")).operands
    return with_operands(load_grammar(text), [mars[n] for n in MARS_OPERANDS])


def meta_objective(formulas, count: int) -> list[float]:
    """Mean population reward of each formula over ``count`` tasks of the ``suite`` family."""
    import torch

    from dsr_l2o.search.config import load_config
    from dsr_l2o.search.features import OperandTracker
    from dsr_l2o.search.meta_train import episode_seed
    from dsr_l2o.search.population import PopulationGradient
    from dsr_l2o.search.unroll import start_episode
    from dsr_l2o.tasks import get_family

    config = load_config(None, estimator="population")
    estimator = PopulationGradient(config, formulas[0].grammar)
    family = get_family("suite")
    tracker = OperandTracker(formulas[0].grammar, [])
    totals = [0.0] * len(formulas)
    for i in range(count):
        seed = episode_seed(1, 30_000 + i)
        episode = start_episode(family.sample(seed), seed, tracker, torch.device("cpu"))
        for k, reward in enumerate(estimator.rewards(list(formulas), episode)):
            totals[k] += float(reward) / count
    return totals


def test_geomeans(formulas, seeds: int) -> tuple[list[float], dict]:
    """Geometric mean over the suite's test tasks of each formula's tuned score / the panel's best."""
    from dsr_l2o.engine import tune_batched
    from dsr_l2o.evaluation import EvalProtocol, formula_spec
    from dsr_l2o.tasks.suite import SUITE_TEST, get_suite_task

    protocol = EvalProtocol(seeds=tuple(range(seeds)))
    logs, per_task = [[] for _ in formulas], {}
    for name in SUITE_TEST:
        results = tune_batched([formula_spec(f) for f in formulas], get_suite_task(name), protocol)
        best = min(r.best_score for r in results)
        per_task[name] = [r.best_score / best if math.isfinite(r.best_score) else math.inf for r in results]
        for k, ratio in enumerate(per_task[name]):
            logs[k].append(math.log(ratio) if math.isfinite(ratio) else math.inf)
    return [math.exp(sum(x) / len(x)) for x in logs], per_task


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation (average ranks for ties)."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main() -> None:
    import torch

    from dsr_l2o.formula import parse_formula
    from machine import cpu_name

    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = grammar()
    names = list(PANEL)
    formulas = [parse_formula(PANEL[n], g) for n in names]
    started = time.perf_counter()
    objective = meta_objective(formulas, args.tasks)
    middle = time.perf_counter()
    geomeans, per_task = test_geomeans(formulas, args.seeds)
    finished = time.perf_counter()
    rho = spearman([-x for x in objective], geomeans)
    order = sorted(range(len(names)), key=lambda k: geomeans[k])
    lines = ["# Alignment of the search's meta-objective with the test protocol", "",
             f"Generated by `benchmarks/objective_alignment.py --tasks {args.tasks} --seeds {args.seeds}` on "
             f"{dt.date.today()} ({cpu_name()}, 1 thread): meta-objective {middle - started:.0f} s, "
             f"test protocol {finished - middle:.0f} s.", "",
             f"**Spearman correlation between the meta-objective (higher reward is better) and the test "
             f"geometric mean (lower is better): {rho:+.2f}** over {len(names)} rules "
             f"(the truncated-backprop objective of earlier versions measured -0.29: `objective_alignment.md` at "
             "commit a6a3b3d).", "",
             f"Meta-objective: mean population reward over {args.tasks} tasks of the `suite` family. Test: "
             f"geometric mean over the {len(per_task)} `SUITE_TEST` tasks of tuned score / the panel's best "
             f"on that task ({args.seeds} seeds, 16 lrs).", "",
             "| rule | formula | meta-objective | rank | test geo. mean | rank |", "|---|---|---:|---:|---:|---:|"]
    objective_rank = {k: i + 1 for i, k in enumerate(sorted(range(len(names)), key=lambda k: -objective[k]))}
    for i, k in enumerate(order, 1):
        lines.append(f"| {names[k]} | `{PANEL[names[k]]}` | {objective[k]:+.3f} | {objective_rank[k]} | "
                     f"{geomeans[k]:.3g} | {i} |")
    lines += ["", "Per test task, tuned score / the panel's best:", "",
              "| rule | " + " | ".join(per_task) + " |", "|---|" + "---:|" * len(per_task)]
    for k in order:
        lines.append(f"| {names[k]} | " + " | ".join(f"{per_task[t][k]:.3g}" for t in per_task) + " |")
    (HERE / "objective_alignment.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
