"""The default search with seeds 0-4, and each formula it returns on the test tasks.

    python benchmarks/search_seeds.py [--seeds 5] [--runs DIR] [--baselines benchmarks/test_baselines.json]
                                      [--grammar grammars/timescales.yaml --name timescales]

Each seed runs ``dsr-l2o search --seed K`` with every other setting at its default (a finished run
in ``--runs`` is reused, so an interrupted benchmark resumes). Every distinct formula is then
tuned on the suite's test tasks (``SUITE_TEST``: never seen by meta-training or selection) under
the fair protocol, in one process with tuned Adam, SGD and momentum. The per-task best of all
tuned baselines comes from ``benchmarks/test_baselines.json`` (``baselines.py --split test``, same
protocol). Writes search_seeds.md/.json beside this file (``search_seeds_NAME.md/.json`` with
``--name``, for a search over another grammar).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAME_PROCESS = ("adam", "sgd", "momentum")


def run_seed(seed: int, runs: Path, grammar: str | None = None) -> dict:
    """The default search with ``seed`` (reused when its directory holds a result)."""
    from dsr_l2o.search import search

    out = runs / f"seed{seed}"
    timing = runs / f"seed{seed}.seconds"
    if not (out / "result.json").is_file():
        if out.exists():
            import shutil

            shutil.rmtree(out)
        start = time.perf_counter()
        search(grammar, out=out, seed=seed)
        timing.write_text(f"{time.perf_counter() - start:.1f}")
    from dsr_l2o.search.select import FINALIST_MARGIN

    data = json.loads((out / "result.json").read_text())
    naming = data.get("naming") or {}
    ratios = {c["formula"]: c["score_ratio_to_adam"] for c in data["candidates"] if c.get("score_ratio_to_adam")}
    lowest = min(ratios.values(), default=None)
    set_aside = {f: r for f, r in ratios.items() if f != data["formula"] and r <= lowest * FINALIST_MARGIN}
    hall = _hall(out)
    rated = {f: hall.advantage(f) for f in [data["formula"], *set_aside]}
    reselected = runs / f"seed{seed}.reselect_seconds"
    return {"seed": seed, "formula": data["formula"], "stage": data["stage"], "lr": data["lr"],
            "reselect_seconds": float(reselected.read_text()) if reselected.is_file() else None,
            "argmax": data.get("relaxation_argmax"), "validation_ratio": data["validation"]["score_ratio_to_adam"],
            "naming": _naming_text(naming), "seconds": float(timing.read_text()) if timing.is_file() else None,
            "set_aside": set_aside, "meta_training_rating": rated,
            "grammar": str(out / "grammar.yaml")}


def _hall(out: Path):
    """The run's hall of fame (meta-training's rating of every formula it scored)."""
    import torch

    from dsr_l2o.search.population import HallOfFame

    return HallOfFame.from_state_dict(torch.load(out / "checkpoint.pt", weights_only=True).get("estimator", {}))


def _naming_text(naming: dict) -> str:
    from dsr_l2o.naming import RuleName

    if not naming:
        return "-"
    rule = RuleName.from_json(naming)
    if rule.equal_to:
        return f"equal to {rule.name}"
    return f"closest to {rule.name} (r = {rule.correlation:.2f})"


def tie_ratings(formulas: dict[str, str]) -> dict[str, float | None]:
    """Each formula's tie evidence (the selection's ``tie_tasks`` scoring; formulas of one grammar
    batched), as the selection computes it for a tie."""
    from dsr_l2o.evaluation import EvalProtocol
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.search.config import load_config
    from dsr_l2o.search.run import _tie_evidence
    from dsr_l2o.search.select import Candidate
    from dsr_l2o.threads import single_thread

    settings = load_config(None)
    evidence = _tie_evidence(settings, EvalProtocol(seeds=tuple(settings.eval_seeds)), lambda text: None, None)
    by_grammar: dict[str, list[str]] = {}
    for text, grammar in formulas.items():
        by_grammar.setdefault(Path(grammar).read_text(), []).append(text)
    out = {}
    with single_thread(True):
        for texts in by_grammar.values():
            grammar = formulas[texts[0]]
            values = evidence([Candidate(parse_formula(t, Path(grammar)), t, None) for t in texts])
            out.update(zip(texts, values))
    return out


def _rating(value) -> str:
    return "-" if value is None else f"{value:+.3f}"


def test_results(formulas: dict[str, str]):
    """``results[task][name]``: tuned formulas and SAME_PROCESS baselines on every test task."""
    import torch

    from dsr_l2o.engine import tune_batched
    from dsr_l2o.evaluation import EvalProtocol, formula_spec, get_baseline
    from dsr_l2o.formula import parse_formula
    from dsr_l2o.tasks.suite import SUITE_TEST, get_suite_task

    torch.set_num_threads(1)
    specs = [formula_spec(parse_formula(text, Path(grammar)), name=text) for text, grammar in formulas.items()]
    specs += [get_baseline(name) for name in SAME_PROCESS]
    results = {}
    for task in SUITE_TEST:
        tuned = tune_batched(specs, get_suite_task(task), EvalProtocol())
        results[task] = {spec.name: r for spec, r in zip(specs, tuned)}
        print(f"{task}: " + ", ".join(f"{n} {r.best_score:.3g}" for n, r in results[task].items()), file=sys.stderr)
    return results


def main(argv=None) -> int:
    from dsr_l2o.evaluation import TuneResult
    from dsr_l2o.evaluation.ratios import FLOOR, geometric_mean_ratio, score_ratio
    from dsr_l2o.tasks.suite import SUITE_TEST
    from machine import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=Path, default=Path("runs/search_seeds"))
    parser.add_argument("--baselines", type=Path, default=HERE / "test_baselines.json")
    parser.add_argument("--grammar", default=None, help="grammar of the searches [default: the default grammar]")
    parser.add_argument("--name", default=None, help="suffix of the output files")
    args = parser.parse_args(argv)
    args.runs.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows = [run_seed(seed, args.runs, args.grammar) for seed in range(args.seeds)]
    formulas = {r["formula"]: r["grammar"] for r in rows}
    for r in rows:
        formulas.update({f: r["grammar"] for f in r["set_aside"] if f not in formulas})
    chosen = list(dict.fromkeys(r["formula"] for r in rows))
    tie_rated = tie_ratings(formulas) if any(r["set_aside"] for r in rows) else {}
    results = test_results(formulas)
    stored = json.loads(args.baselines.read_text())["results"]
    baselines = {t: {n: TuneResult.from_json(r) for n, r in stored[t].items()} for t in SUITE_TEST}
    best = {t: min(baselines[t], key=lambda n: baselines[t][n].best_score) for t in SUITE_TEST}
    best_score = {t: baselines[t][best[t]].best_score for t in SUITE_TEST}

    def score(task, name):
        return results[task][name].best_score

    def geo(name, reference):
        return geometric_mean_ratio([score(t, name) for t in SUITE_TEST], [reference(t) for t in SUITE_TEST])

    baseline_geo = {n: geometric_mean_ratio([baselines[t][n].best_score for t in SUITE_TEST],
                                            [best_score[t] for t in SUITE_TEST]) for n in baselines[SUITE_TEST[0]]}
    summary = {}
    for text in formulas:
        to_adam = geo(text, lambda t: score(t, "adam"))
        to_best = geo(text, lambda t: best_score[t])
        beats = [t for t in SUITE_TEST if score(t, text) < min(score(t, "sgd"), score(t, "momentum"))
                 or max(score(t, text), FLOOR) <= FLOOR]
        rank = 1 + sum(v is not None and v < to_best for v in baseline_geo.values())
        summary[text] = {"to_adam": to_adam, "to_best": to_best, "beats_sgd_and_momentum": beats, "rank": rank,
                         "per_task_to_adam": {t: score_ratio(score(t, text), score(t, "adam")) for t in SUITE_TEST},
                         "per_task_to_best": {t: score_ratio(score(t, text), best_score[t]) for t in SUITE_TEST}}
    adam_to_best = geo("adam", lambda t: best_score[t])
    n_beat = sum(summary[r["formula"]]["to_adam"] < 1 for r in rows)
    command = f"--seeds {args.seeds}" + (f" --grammar {args.grammar}" if args.grammar else "") + (
        f" --name {args.name}" if args.name else "")
    lines = ["# The default search over five seeds, scored on the test tasks"
             + (f" (grammar `{args.grammar}`)" if args.grammar else ""), "",
             f"Written by `python benchmarks/search_seeds.py {command}`; do not edit by hand. "
             f"{dt.date.today()}, {cpu_name()}, {time.perf_counter() - started:.0f} s in all "
             "(searches reused from `--runs` are not re-timed).", ""]
    if any(r["reselect_seconds"] for r in rows):
        lines += ["These runs' meta-training comes from an earlier version; only their selection was rerun (the run "
                  "directory resumed without its result), so `search seconds` is the earlier run's and `selection "
                  "rerun` the new selection's, with its resume.", ""]
    lines += [
             "Each seed runs `dsr-l2o search" + (f" {args.grammar}" if args.grammar else "")
             + " --seed K` with the defaults of `searches/default.yaml`. The test "
             f"tasks ({', '.join(SUITE_TEST)}) are never seen by meta-training or selection. Fair protocol: 16 lrs "
             "from 1e-4 to 10, a best lr at an edge followed past it, seeds 0-2, score = mean loss of the last 10% "
             f"of steps; a score under {FLOOR:g} counts as {FLOOR:g} (solved). Tuned Adam, SGD and momentum ran in "
             "the same process as the formulas; the per-task best of all "
             f"{len(baseline_geo)} tuned baselines comes from `test_baselines.json`.", "",
             f"**The formula beats tuned Adam in test geometric mean in {n_beat} of {len(rows)} seeds.** "
             f"Tuned Adam's own geometric mean / the per-task best baseline is {adam_to_best:.3g}.", "",
             "| seed | formula | naming | stage | validation / Adam | test / Adam | test / per-task best | "
             "rank among the baselines | beats SGD and momentum | search seconds |"
             + (" selection rerun |" if any(r["reselect_seconds"] for r in rows) else ""),
             "|---:|---|---|---|---:|---:|---:|---:|---:|---:|" + ("---:|" if any(r["reselect_seconds"] for r in rows) else "")]
    for r in rows:
        s = summary[r["formula"]]
        seconds = "-" if r["seconds"] is None else f"{r['seconds']:.0f}"
        rerun = f" {r['reselect_seconds']:.0f} |" if r["reselect_seconds"] else ""
        lines.append(f"| {r['seed']} | `{r['formula']}` | {r['naming']} | {r['stage']} | {r['validation_ratio']:.3f} | "
                     f"{s['to_adam']:.3f} | {s['to_best']:.3g} | {s['rank']} of {len(baseline_geo) + 1} | "
                     f"{len(s['beats_sgd_and_momentum'])}/{len(SUITE_TEST)} | {seconds} |{rerun}")
    aside = [(r["seed"], f, v) for r in rows for f, v in r["set_aside"].items()]
    if aside:
        lines += ["", "Finalists the selection set aside (within 25% of the best one-seed validation ratio, then decided "
                  "by the rule of `docs/search.md`: by more seeds where a lead holds across tasks, else by simplicity or "
                  "the tie tasks), on the same test tasks:", "",
                  "| seed | set aside | one-seed validation / Adam | test / Adam | tie-task rating | meta-training's rating | "
                  "chosen instead | its test / Adam | its tie-task rating | its meta-training rating |",
                  "|---:|---|---:|---:|---:|---:|---|---:|---:|---:|"]
        by_seed = {r["seed"]: r for r in rows}
        for seed, f, v in aside:
            picked, rating = by_seed[seed]["formula"], by_seed[seed]["meta_training_rating"]
            lines.append(f"| {seed} | `{f}` | {v:.3f} | {summary[f]['to_adam']:.3f} | {_rating(tie_rated.get(f))} | "
                         f"{_rating(rating[f])} | `{picked}` | {summary[picked]['to_adam']:.3f} | "
                         f"{_rating(tie_rated.get(picked))} | {_rating(rating[picked])} |")
        lines += ["", "The tie-task rating is minus the mean log(score / tuned Adam's) on the 20 tasks drawn from the "
                  "training family that decide ties between equally simple finalists (the same tasks in every seed; "
                  "higher is better); the selection defers to it. Meta-training's rating, the hall of fame's shrunk "
                  "mean advantage over the population each formula was drawn with (`-` for a formula it never drew), "
                  "is shown for comparison: it decided such ties before, and it flips between seeds."]
    shown = chosen + [f for f in formulas if f not in chosen]
    lines += ["", "Per test task: the formula's tuned score / tuned Adam's (/ the per-task best baseline, which is named):",
              "", "| task | best baseline | " + " | ".join(f"`{t}`" for t in shown) + " | SGD | momentum |",
              "|---|---|" + "---:|" * (len(shown) + 2)]
    for t in SUITE_TEST:
        cells = [f"{summary[f]['per_task_to_adam'][t]:.3g} ({summary[f]['per_task_to_best'][t]:.3g})" for f in shown]
        cells += [f"{score_ratio(score(t, n), score(t, 'adam')):.3g}" for n in ("sgd", "momentum")]
        lines.append(f"| {t} | {best[t]} | " + " | ".join(cells) + " |")
    lines += ["", "Baselines by geometric mean of tuned score / the per-task best on the test tasks:", "",
              "| baseline | geometric mean |", "|---|---:|"]
    for name, value in sorted(baseline_geo.items(), key=lambda kv: kv[1]):
        lines.append(f"| {name} | {value:.3g} |")
    stem = "search_seeds" + (f"_{args.name}" if args.name else "")
    (HERE / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (HERE / f"{stem}.json").write_text(json.dumps({"seeds": rows, "formulas": summary, "tie_ratings": tie_rated,
                                                        "baselines_to_best": baseline_geo,
                                                        "adam_to_best": adam_to_best}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
