"""Time the default search end to end and compare its formula with tuned SGD, momentum and Adam.

Runs `dsr-l2o search` with no settings (into a temporary directory), checks that it reproduces
the committed `searches/default/result.json`, then tunes the formula and the baselines with the
default fair protocol (16 lrs from 1e-4 to 10, a best lr at an edge followed past it, seeds 0-2)
on the validation tasks, all in this process. Writes default_search.md beside this file. Usage: python benchmarks/default_search.py
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    import torch

    from dsr_l2o.evaluation import EvalProtocol, compare, formula_spec, get_baselines
    from dsr_l2o.result import load_result
    from dsr_l2o.tasks import VALIDATION_TASKS, get_task

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dsr_l2o.cli", "search", "--out", f"{tmp}/run", "--quiet"],
                       check=True, cwd=REPO)
        search_seconds = time.perf_counter() - started
        fresh = json.loads(Path(f"{tmp}/run/result.json").read_text())
    committed = json.loads((REPO / "searches/default/result.json").read_text())
    same = all(fresh[k] == committed[k] for k in ("formula", "lr", "candidates", "validation"))

    torch.set_num_threads(1)
    result = load_result(REPO / "searches/default")
    specs = [formula_spec(result.formula, name="formula")] + get_baselines(["sgd", "momentum", "adam"])
    tasks = [get_task(name) for name in VALIDATION_TASKS]
    started = time.perf_counter()
    comparison = compare(specs, tasks, EvalProtocol())
    eval_seconds = time.perf_counter() - started

    lines = [
        "# Default search: time and quality", "",
        f"Written by `python benchmarks/default_search.py` on {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"({os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end, torch {torch.__version__}).", "",
        f"- `dsr-l2o search` (defaults, CPU): **{search_seconds / 60:.1f} minutes** wall clock, all phases included.",
        f"- It reproduces the committed `searches/default/result.json`: **{'yes' if same else 'NO'}** "
        f"(formula `{fresh['formula']}`).",
        f"- Fair protocol: 16 lrs 1e-4..10 (a best lr at an edge followed past it), seeds 0, 1, 2, "
        f"each task's own horizon; {eval_seconds:.0f} s.", "",
        "| task | formula / adam | sgd / adam | momentum / adam | formula rank of 4 |", "|---|---:|---:|---:|---:|",
    ]
    for task in comparison.tasks:
        ratios = [comparison.ratio(task, name, "adam") for name in ("formula", "sgd", "momentum")]
        cells = " | ".join("-" if r is None else f"{r:.3g}" for r in ratios)
        lines.append(f"| {task} | {cells} | {comparison.rank(task, 'formula')} |")
    geo = [comparison.geomean_ratio(name, "adam") for name in ("formula", "sgd", "momentum")]
    lines.append("| **geometric mean** | " + " | ".join("-" if g is None else f"{g:.3g}" for g in geo) + " | |")
    out = Path(__file__).with_suffix(".md")
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
