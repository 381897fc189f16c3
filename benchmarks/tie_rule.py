"""The finalist round's task criterion on recorded pairs: the sign test it used against the signed-rank test.

    python benchmarks/tie_rule.py [--seeds 3] [--add-recorded CPU FILE]

A finalist is tied with the leader when the lead is under two standard errors of their per-task
differences and not significant across the validation tasks (``dsr_l2o.search.select``). This
benchmark tunes the pairs of finalists the default search and two other grammars' searches meet
(validation tasks only, 3 seeds, as the finalist round does), and asks of each pair, on this CPU
and on any other whose scores were recorded: is it tied under the old sign test, under the
signed-rank test, and how often does the answer flip when every score moves by rounding-sized
amounts (a factor drawn from exp(+-0.1%) or exp(+-0.5%))? ``--add-recorded`` stores a CPU's scores of the default
pair from a ``composition_panel.json`` written there. Writes tie_rule.md/.json beside this file,
keeping other CPUs' entries.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
GRAMMARS = HERE.parent / "grammars"
PAIRS = {  # label: (grammar, leader by the one-seed round, the other finalist)
    "default (mars.yaml)": ("mars.yaml", "k_tilde", "m_tilde"),
    "timescales.yaml": ("timescales.yaml", "m2_tilde", "m_tilde"),
    "corrected.yaml": ("corrected.yaml", "k_tilde", "m_tilde"),
}
JITTERS = (0.001, 0.005)
DRAWS = 1000


def sign_test_p(diffs: list[float]) -> float:
    """One-sided p-value of the sign test that the leader wins more tasks than a fair coin would."""
    wins, n = sum(d > 0 for d in diffs), len(diffs)
    return sum(math.comb(n, k) for k in range(wins, n + 1)) / 2 ** n


def sign_test_tied(diffs: list[float]) -> bool:
    """The rule before: within two standard errors and won on too few tasks for a 5% sign test."""
    from dsr_l2o.search.select import _within_errors

    return _within_errors(diffs) and sign_test_p(diffs) > 0.05


def differences(scores: dict[str, dict[str, float]], leader: str, other: str) -> list[float]:
    """Per task, log of the other finalist's score over the leader's, as the finalist round takes it."""
    from dsr_l2o.evaluation.ratios import FLOOR
    from dsr_l2o.search.select import _log_ratio

    return [_log_ratio(s[other], max(s[leader], FLOOR)) for s in scores.values()]


def flip_rates(scores, leader, other, rules, jitter: float) -> list[float]:
    """Per rule, the share of :data:`DRAWS` jittered copies of ``scores`` on which it answers
    otherwise than on the scores; every rule sees the same copies (seeded by ``jitter`` alone)."""
    rng = random.Random(f"{jitter}")
    answers = [rule(differences(scores, leader, other)) for rule in rules]
    flips = [0] * len(rules)
    for _ in range(DRAWS):
        jittered = {t: {n: v * math.exp(rng.uniform(-jitter, jitter)) for n, v in s.items()} for t, s in scores.items()}
        diffs = differences(jittered, leader, other)
        for k, (rule, answer) in enumerate(zip(rules, answers)):
            flips[k] += rule(diffs) != answer
    return [f / DRAWS for f in flips]


def tune_pairs(seeds: int) -> dict[str, dict]:
    """Per pair, both finalists scored as the finalist round scores them (:class:`Scorer`, one per
    grammar, seeds ``0 .. seeds-1``): per-task scores and per-seed mean log ratios to tuned Adam."""
    import torch

    from dsr_l2o.evaluation import EvalProtocol
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.search.select import Candidate, Scorer
    from dsr_l2o.tasks.suite import SUITE_VALIDATION, get_suite_task

    torch.set_num_threads(1)
    tasks = [get_suite_task(t) for t in SUITE_VALIDATION]
    out = {}
    for label, (grammar, *names) in PAIRS.items():
        scorer = Scorer(tasks, EvalProtocol(seeds=tuple(range(seeds))), lambda text: None, workers=2)
        pair = scorer.score_many([Candidate(parse_formula(n, GRAMMARS / grammar), n, None) for n in names])
        out[label] = {"scores": {t: {c.formula.text: c.scores[t] for c in pair} for t in SUITE_VALIDATION},
                      "seed_logs": {c.formula.text: c.seed_logs for c in pair}}
        print(f"{label}: " + ", ".join(f"{c.formula.text} {c.ratio:.4g}" for c in pair), file=sys.stderr)
    return out


def seed_criteria(entry: dict, leader: str, other: str) -> tuple[str, str]:
    """The finalist round's seed criterion, shown before and now: the lead in mean per-seed log ratio
    to tuned Adam against the larger of the two seed-to-seed spreads (before), and against the spread
    of the paired per-seed differences (now); a tie when the lead is not larger ("-" without
    per-seed values, as for scores recorded by another benchmark)."""
    import statistics

    from dsr_l2o.search.select import within_seed_spread

    logs = entry.get("seed_logs")
    if not logs:
        return "-", "-"
    diffs = [y - x for x, y in zip(logs[leader], logs[other])]
    lead = sum(diffs) / len(diffs)
    spread = max(statistics.stdev(logs[leader]), statistics.stdev(logs[other]))
    before = f"{lead:.3f} vs {spread:.3f}: {'tied' if lead <= spread else 'no'}"
    now = f"{lead:.3f} vs {statistics.stdev(diffs):.3f}: {'tied' if within_seed_spread(diffs) else 'no'}"
    return before, now


def main(argv=None) -> int:
    from dsr_l2o.search.select import NEGLIGIBLE, _task_tied, signed_rank_p
    from machine import cpu_name
    from validation_scores import write_page

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--add-recorded", nargs=2, metavar=("CPU", "FILE"),
                        help="store the default pair's scores from a composition_panel.json written on CPU")
    args = parser.parse_args(argv)
    path = HERE / "tie_rule.json"
    runs = json.loads(path.read_text())["runs"] if path.exists() else {}
    started = time.perf_counter()
    if args.add_recorded:
        cpu, file = args.add_recorded
        recorded = json.loads(Path(file).read_text())
        panel, panel_seeds = recorded["scores"], recorded["seeds"]
        _, leader, other = PAIRS["default (mars.yaml)"]
        runs[cpu] = {**runs.get(cpu, {}), "default (mars.yaml)": {
            "scores": {t: {leader: s[leader], other: s[other]} for t, s in panel.items()},
            "source": f"{Path(file).name}, {panel_seeds} seeds"}}
    else:
        here = runs.setdefault(cpu_name(), {})
        for label, tuned in tune_pairs(args.seeds).items():
            here[label] = {**tuned, "source": f"tuned by this script in {time.perf_counter() - started:.0f} s, "
                                                      f"{args.seeds} seeds, {dt.date.today()}"}
    lines = ["# The tie rule's task criterion: sign test against signed-rank test", "",
             "Written by `python benchmarks/tie_rule.py` (and `--add-recorded` for scores recorded on another "
             "CPU); do not edit by hand. Where each row's scores come from is listed below the table.", "",
             "Each pair is the one-seed leader of a search's finalist round and the other finalist, tuned under "
             "the fair protocol on the validation tasks with seeds 0-2 as that round does (the test tasks are "
             "not run). A diff is log(other / leader) on a task. **Tied** means the task criterion calls the "
             "lead a few tasks' doing (under two standard errors of the diffs, and not significant at 5%). "
             "The *seed criterion* is the round's other test: the lead in mean per-seed log ratio to tuned Adam against "
             "the larger of the two candidates' seed-to-seed spreads (before) or the spread of their paired per-seed "
             "differences (now), a tie when the lead is not larger (only for pairs this script tuned). *Flips* is the share of "
             f"{DRAWS} copies of the scores (the same copies for both tests), each score multiplied by a factor drawn "
             "from exp(±0.1%) or exp(±0.5%), on which the answer differs: how much rounding-sized noise decides it "
             f"(about ±{100 * math.sqrt(0.25 / DRAWS) * 2:.0f} points at 50%, from {DRAWS} draws).", "",
             "| CPU | pair | leader wins | diffs under 1% | sign test p | tied (sign test) | flips ±0.1% | ±0.5% | "
             "signed-rank p | tied (signed rank) | flips ±0.1% | ±0.5% | seed criterion before | now |",
             "|---|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---|---|"]
    runs = {cpu: {label: e for label, e in pairs.items() if label in PAIRS} for cpu, pairs in runs.items()}
    for cpu, pairs in runs.items():
        for label, entry in pairs.items():
            _, leader, other = PAIRS[label]
            diffs = differences(entry["scores"], leader, other)
            wins, n = sum(d > 0 for d in diffs), len(diffs)
            small = sum(abs(d) <= NEGLIGIBLE for d in diffs)
            rules = (sign_test_tied, _task_tied)
            rates = [flip_rates(entry["scores"], leader, other, rules, j) for j in JITTERS]
            old, new = ([rule(diffs)] + [r[k] for r in rates] for k, rule in enumerate(rules))
            entry["diffs"] = diffs
            lines.append(f"| {cpu} | {label}: `{leader}` vs `{other}` | {wins}/{n} | {small} | {sign_test_p(diffs):.3g} | "
                         f"{'yes' if old[0] else 'no'} | {old[1]:.1%} | {old[2]:.1%} | {signed_rank_p(diffs):.3g} | "
                         f"{'yes' if new[0] else 'no'} | {new[1]:.1%} | {new[2]:.1%} | "
                         f"{' | '.join(seed_criteria(entry, leader, other))} |")
    lines += ["", "Per-task diffs (log of the other finalist's score over the leader's; positive: the leader is "
              "ahead):", ""]
    for cpu, pairs in runs.items():
        for label, entry in pairs.items():
            lines.append(f"- {cpu}, {label} ({entry['source']}): "
                         + ", ".join(f"{t.removeprefix('val_')} {d:+.4f}" for t, d in zip(entry["scores"], entry["diffs"])))
    write_page("tie_rule", lines, {"runs": runs})
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
