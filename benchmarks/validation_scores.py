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


def write_page(stem: str, lines: list[str], payload: dict) -> None:
    """Write ``<stem>.md`` (the lines) and ``<stem>.json`` (the payload) beside this file, and print the page."""
    import json
    from pathlib import Path

    here = Path(__file__).resolve().parent
    (here / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (here / f"{stem}.json").write_text(json.dumps(payload, indent=1) + "\n")
    print("\n".join(lines))
