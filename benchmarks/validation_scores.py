"""Tuned scores of optimizer specs on the validation tasks (shared by the validation-only benchmarks)."""

from __future__ import annotations

import sys


def tune_on_validation(specs, seeds: int) -> dict[str, dict[str, float]]:
    """``scores[task][spec.name]``: each spec's tuned score on every ``SUITE_VALIDATION`` task, all
    specs in one batch per task, under the fair protocol with seeds ``0 .. seeds-1``, one thread."""
    import torch

    from dsr_l2o.engine import tune_batched
    from dsr_l2o.evaluation import EvalProtocol
    from dsr_l2o.tasks.suite import SUITE_VALIDATION, get_suite_task

    torch.set_num_threads(1)
    protocol = EvalProtocol(seeds=tuple(range(seeds)))
    scores = {}
    for task in SUITE_VALIDATION:
        results = tune_batched(specs, get_suite_task(task), protocol)
        scores[task] = {spec.name: r.best_score for spec, r in zip(specs, results)}
        print(f"{task}: " + ", ".join(f"{n} {s:.3g}" for n, s in scores[task].items()), file=sys.stderr)
    return scores
