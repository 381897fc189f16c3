"""The population gradient against the straight-through (truncated-backprop) estimator, same budget.

    python benchmarks/estimator_ablation.py [--seed 0] [--runs DIR]

Both arms are the default search (`searches/default.yaml`: task suite, validation on
``SUITE_VALIDATION``, grow stage off) with one setting changed, ``estimator``:

* ``population`` (the default), reused from ``search_seeds.py``'s run of the same seed when present;
* ``truncated_backprop`` with the settings it was tuned with (meta_lr 0.05, temperature_end 0.05,
  descent_prior 4, init_bias 2), for as many meta-steps as fill the population arm's meta-training seconds
  (measured on 10 of its own meta-steps first).

Each arm's formula, and the old default pipeline's committed rule `m + 0.2 * sign(g) * abs(m)`
(straight-through plus the grow stage), is then tuned with tuned Adam in one process on the test
tasks (``SUITE_TEST``), never seen by either search. Writes estimator_ablation.md/.json here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STRAIGHT_THROUGH = {"estimator": "truncated_backprop", "meta_lr": 0.05, "temperature_end": 0.05,
                    "descent_prior": 4.0, "init_bias": 2.0}
OLD_DEFAULT_RULE = "m + 0.2 * sign(g) * abs(m)"


def seconds_per_meta_step(seed: int, steps: int = 10) -> float:
    """Wall seconds of one straight-through meta-step on the suite (mean of ``steps``)."""
    import torch

    from dsr_l2o.grammar import default_grammar_path, load_grammar
    from dsr_l2o.search.config import load_config
    from dsr_l2o.search.meta_train import MetaTrainer
    from dsr_l2o.search.relaxation import RelaxedRule
    from dsr_l2o.tasks import get_family

    config = load_config(None, seed=seed, device="cpu", **STRAIGHT_THROUGH)
    grammar = load_grammar(config.grammar or default_grammar_path())  # the searched grammar, as in search()
    rule = RelaxedRule(grammar, config.depth, config.init_lr, config.init_bias)
    trainer = MetaTrainer(rule, get_family(config.tasks), config, torch.device("cpu"))
    start = time.perf_counter()
    for _ in range(steps):
        trainer.step()
    return (time.perf_counter() - start) / steps


def run(out: Path, **settings) -> dict:
    """The search of ``settings`` in ``out``: reused when it holds one run with the same meta-steps."""
    from dsr_l2o.search import search

    done = out / "result.json"
    steps = settings.get("meta_steps")
    if not done.is_file() or (steps and json.loads(done.read_text())["metrics"]["meta_steps"] != steps):
        if out.exists():
            import shutil

            shutil.rmtree(out)
        search(out=out, **settings)
    return json.loads((out / "result.json").read_text())


def main(argv=None) -> int:
    import torch

    from dsr_l2o.engine import tune_batched
    from dsr_l2o.evaluation import EvalProtocol, formula_spec, get_baseline
    from dsr_l2o.evaluation.ratios import geometric_mean_ratio, score_ratio
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.tasks.suite import SUITE_TEST, get_suite_task
    from machine import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=Path, default=Path("runs/search_seeds"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    population = run(args.runs / f"seed{args.seed}", seed=args.seed)
    budget = population["metrics"]["seconds"]
    per_step = seconds_per_meta_step(args.seed)
    steps = max(5, int(round(budget / per_step / 5)) * 5)
    straight = run(args.runs / f"straight_through_seed{args.seed}", seed=args.seed, meta_steps=steps,
                   **STRAIGHT_THROUGH)
    arms = {"population (default)": population, "straight-through": straight}
    rules = {name: parse_formula(r["formula"], Path(args.runs / (f"seed{args.seed}" if r is population else
                                                               f"straight_through_seed{args.seed}") / "grammar.yaml"))
             for name, r in arms.items()}
    rules["old default: straight-through + grow"] = parse_formula(OLD_DEFAULT_RULE)
    specs = [formula_spec(f, name=name) for name, f in rules.items()] + [get_baseline("adam")]
    scores = {}
    for task in SUITE_TEST:
        tuned = tune_batched(specs, get_suite_task(task), EvalProtocol())
        scores[task] = {s.name: r.best_score for s, r in zip(specs, tuned)}
        print(task, scores[task], file=sys.stderr)
    geo = {n: geometric_mean_ratio([scores[t][n] for t in SUITE_TEST], [scores[t]["adam"] for t in SUITE_TEST])
           for n in rules}
    lines = ["# Estimator ablation: population gradient against straight-through, same budget", "",
             f"Written by `python benchmarks/estimator_ablation.py --seed {args.seed}`; do not edit by hand. "
             f"{dt.date.today()}, {cpu_name()}, {time.perf_counter() - started:.0f} s in all.", "",
             "Both searches are `dsr-l2o search` with the defaults (grammar "
             f"`{Path(population['config']['grammar'] or 'default').stem}`, task suite, `SUITE_VALIDATION` to select, grow "
             f"off, seed {args.seed}) and one change: the estimator. The straight-through arm uses the settings it was "
             f"tuned with ({', '.join(f'{k} {v}' for k, v in STRAIGHT_THROUGH.items() if k != 'estimator')}) and "
             f"{steps} meta-steps, which at {per_step:.2f} s each fill the population arm's {budget:.0f} s of "
             "meta-training. Test: the fair protocol on the test tasks (never seen by either search), tuned Adam "
             "in the same process.", "",
             "| arm | relaxation's argmax | formula | validation / Adam | test geometric mean / Adam | "
             "meta-training seconds |", "|---|---|---|---:|---:|---:|"]
    for name, r in arms.items():
        lines.append(f"| {name} | `{r.get('relaxation_argmax')}` | `{r['formula']}` | "
                     f"{r['validation']['score_ratio_to_adam']:.3f} | {geo[name]:.3f} | {r['metrics']['seconds']:.0f} |")
    lines.append(f"| old default: straight-through + grow | - | `{OLD_DEFAULT_RULE}` | - | "
                 f"{geo['old default: straight-through + grow']:.3f} | - |")
    lines += ["", "Per test task, tuned score / tuned Adam's:", "",
              "| task | " + " | ".join(rules) + " |", "|---|" + "---:|" * len(rules)]
    for t in SUITE_TEST:
        lines.append(f"| {t} | " + " | ".join(f"{score_ratio(scores[t][n], scores[t]['adam']):.3g}" for n in rules) + " |")
    (HERE / "estimator_ablation.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / "estimator_ablation.json").write_text(json.dumps(
        {"steps": steps, "seconds_per_step": per_step, "budget": budget, "test_scores": scores,
         "geomean_to_adam": geo, "formulas": {n: f.text for n, f in rules.items()}}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
