"""Compositions of ``k_tilde`` the default grammar can write, against it and momentum (validation only).

    python benchmarks/composition_panel.py [--seeds 3]

The default search returns the bare operand ``k_tilde``; its relaxation (depth 2) can also write
sums and products of it with another operand. This benchmark tunes a panel of such compositions
(one depth-3 cautious variant besides) with the default search's grammar, next to Adam, SGD,
momentum, Nesterov and MARS, under the fair protocol on ``SUITE_VALIDATION``. It never touches the
test tasks: it asks whether the validation evidence could have chosen a rule that beats tuned
momentum on every task, the bar of issue 11. Writes composition_panel.md/.json beside this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRAMMAR = HERE.parent / "grammars" / "mars.yaml"
PANEL = {
    "k_tilde": "the default search's answer (MARS)",
    "m_tilde": "Adam in the grammar's arithmetic (the other finalist)",
    "k_tilde + m": "plus raw momentum",
    "k_tilde + m_tilde": "plus Adam's step",
    "k_tilde + k_hat": "plus MARS's raw momentum",
    "k_tilde + g_tilde": "plus a Nesterov-like gradient term",
    "k_tilde + k_tilde * abs(k_tilde)": "steps grown where the step is large",
    "k_tilde + sign(k_hat)": "plus a Lion-like sign step",
    "k_tilde * (1 + sign(k_tilde * g))": "cautious MARS (depth 3)",
}
BASELINES = ("adam", "sgd", "momentum", "nesterov", "mars")
REFERENCE, RIVAL = "adam", "momentum"


def main(argv=None) -> int:
    from dsr_l2o.evaluation import formula_spec, get_baseline
    from dsr_l2o.evaluation.ratios import FLOOR, geometric_mean_ratio, score_ratio
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.tasks.suite import SUITE_VALIDATION
    from machine import cpu_name
    from validation_scores import tune_on_validation, write_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    specs = [formula_spec(parse_formula(text, GRAMMAR), name=text) for text in PANEL]
    specs += [get_baseline(name) for name in BASELINES]
    scores = tune_on_validation(specs, args.seeds)
    names = list(PANEL) + list(BASELINES)
    informative = [t for t in SUITE_VALIDATION if scores[t][REFERENCE] > FLOOR]

    def geo(name, tasks):
        return geometric_mean_ratio([scores[t][name] for t in tasks], [scores[t][REFERENCE] for t in tasks])

    def wins(name, rival):
        return sum(scores[t][name] < scores[t][rival] for t in SUITE_VALIDATION)

    solved = [t.removeprefix("val_") for t in SUITE_VALIDATION if t not in informative]
    lines = ["# Compositions of `k_tilde` against momentum (validation tasks only)", "",
             f"Written by `python benchmarks/composition_panel.py --seeds {args.seeds}`; do not edit by hand. "
             f"{dt.date.today()}, {cpu_name()}, {time.perf_counter() - started:.0f} s.", "",
             "Fair protocol on `SUITE_VALIDATION` (16 lrs from 1e-4 to 10, a best lr at an edge followed past it, "
             f"seeds 0-{args.seeds - 1}), every rule in one process, formulas in `grammars/mars.yaml`. Cells are "
             f"tuned score / tuned Adam's (a score under {FLOOR:g} counts as {FLOOR:g}). The test tasks are not "
             "run.", "",
             "| rule | what it is | " + " | ".join(t.removeprefix("val_") for t in SUITE_VALIDATION)
             + " | geometric mean | without tasks Adam solves | beats momentum | beats `k_tilde` |",
             "|---|---|" + "---:|" * (len(SUITE_VALIDATION) + 4)]
    for name in names:
        cells = [f"{score_ratio(scores[t][name], scores[t][REFERENCE]):.3g}" for t in SUITE_VALIDATION]
        what = PANEL.get(name, "tuned baseline")
        shown = f"`{name}`" if name in PANEL else name
        lines.append(f"| {shown} | {what} | " + " | ".join(cells) + f" | {geo(name, SUITE_VALIDATION):.3g} | "
                     f"{geo(name, informative):.3g} | {wins(name, RIVAL)}/{len(SUITE_VALIDATION)} | "
                     f"{wins(name, 'k_tilde')}/{len(SUITE_VALIDATION)} |")
    best_wins = max(wins(n, RIVAL) for n in PANEL)
    lines += ["", f"Tasks tuned Adam solves (score under {FLOOR:g}): {', '.join(solved) or 'none'}. There every "
              "rule that also solves scores 1, and one that does not scores its loss / 1e-7, so that one task "
              "moves a geometric mean over 10 tasks by its tenth root; the column without them shows the rest.",
              "", f"The most validation tasks on which a panel formula beats tuned momentum: {best_wins} of "
              f"{len(SUITE_VALIDATION)}."]
    write_page("composition_panel", lines, {"seeds": args.seeds, "scores": scores})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
