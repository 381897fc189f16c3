"""The test suite's time now against the suite issue 10 was measured on, back to back on this machine.

Issue 10 asked that the redesign leave the suite no slower than it was when the issue was filed
(73 s on the filer's 2 cores). Seconds from another machine cannot be compared with seconds here,
so this script runs both suites here, alternately, each the way its own README ran it:

- **reference**: commit ``0581588`` (the last commit before issue 10, 515 tests), checked out with
  ``git archive`` into a scratch directory, installed into its own virtual environment with its
  README's command (``pip install "torch==2.13.0" -e ".[test]"``), and run with ``python -m pytest -q``;
- **current**: this checkout, in the environment running this script, with its README's command,
  ``python -m pytest -q -n auto``; every round starts with an empty Inductor cache, as CI does.

Each suite runs ``--rounds`` times, alternating (reference first), with pytest's cache plugin off.
The table gives pytest's own duration and the whole command's wall time of every run, and the
ratios of the medians. Writes
``benchmarks/suite_time.md`` and ``.json``.

Usage: ``python benchmarks/suite_time.py [--rounds 2] [--scratch runs/suite_time]``
(``--render`` rewrites the page from the committed ``suite_time.json`` without running anything).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from machine import cpu_name  # noqa: E402

REFERENCE = "0581588"
"""The commit issue 10 was filed against: the suite then had 515 tests."""

SUITES = ("reference", "current")

SUMMARY = re.compile(r"(\d+) passed(?:, (\d+) \w+)*.* in ([0-9.]+)s")


def prepare_reference(scratch: Path) -> tuple[Path, Path]:
    """The reference checkout and the python of its own environment (made once, then reused)."""
    tree, venv = scratch / "reference", scratch / "reference_venv"
    python = venv / "bin" / "python"
    if not (tree / "pyproject.toml").is_file():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "-C", str(REPO), "archive", REFERENCE], check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    if not python.is_file():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", "-e", ".[test]"], cwd=tree,
                       check=True)
    return tree, python


def run_suite(label: str, command: list[str], cwd: Path, env: dict) -> dict:
    """One run of a suite: pytest's reported duration, the wall time and the counts."""
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    match = SUMMARY.search(last)
    if proc.returncode != 0 or match is None:
        raise SystemExit(f"{label} suite failed (exit {proc.returncode}): {last or proc.stderr[-500:]}")
    print(f"{label}: {last.strip('= ')}", flush=True)
    return {"suite": label, "passed": int(match.group(1)), "pytest_seconds": float(match.group(3)),
            "wall_seconds": round(wall, 1), "summary": last.strip("= ")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scratch", type=Path, default=REPO / "runs" / "suite_time")
    parser.add_argument("--render", action="store_true", help="only rewrite suite_time.md from suite_time.json")
    args = parser.parse_args()
    if args.render:
        data = json.loads((HERE / "suite_time.json").read_text())
        data.update(summarise(data["runs"]))
        (HERE / "suite_time.json").write_text(json.dumps(data, indent=1) + "\n")
        render(data)
        return
    tree, python = prepare_reference(args.scratch)
    runs = []
    for round_ in range(args.rounds):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "TORCHINDUCTOR"))}
        runs.append(dict(run_suite("reference", [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider"], tree,
                                   env), round=round_))
        inductor = args.scratch / "inductor_cache"
        shutil.rmtree(inductor, ignore_errors=True)
        current_env = dict(env, TORCHINDUCTOR_CACHE_DIR=str(inductor))
        runs.append(dict(run_suite("current", [sys.executable, "-m", "pytest", "-q", "-n", "auto", "-p",
                                               "no:cacheprovider"], REPO, current_env), round=round_))
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    data = {"reference_commit": REFERENCE, "current_commit": commit, "cpu": cpu_name(), "cores": os.cpu_count(),
            "rounds": args.rounds, "created": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "runs": runs}
    data.update(summarise(runs))
    (HERE / "suite_time.json").write_text(json.dumps(data, indent=1) + "\n")
    render(data)


def summarise(runs: list[dict]) -> dict:
    """Medians per suite of pytest's time and of the wall time, and their ratios (current / reference)."""
    out = {"tests": {label: next(r["passed"] for r in runs if r["suite"] == label) for label in SUITES}}
    for key in ("pytest_seconds", "wall_seconds"):
        medians = {label: statistics.median(r[key] for r in runs if r["suite"] == label) for label in SUITES}
        out[f"median_{key}"] = medians
        out[f"ratio_{key}"] = round(medians["current"] / medians["reference"], 3)
    return out


def render(data: dict) -> None:
    """Write ``suite_time.md`` from the measured data."""
    lines = [
        "# Suite time: now against the suite issue 10 was measured on",
        "",
        f"`python benchmarks/suite_time.py --rounds {data['rounds']}` on {data['cpu']} ({data['cores']} cores), "
        f"{data['created']}. Each suite ran the way its README ran it, alternately, with pytest's cache plugin off; "
        "the current suite started every round with an empty Inductor cache. *pytest's time* is the duration "
        "pytest reports; *wall* is the whole command, from starting python to its exit (it includes what "
        "pytest does before its clock starts, such as importing the conftest).",
        "",
        "| round | suite | commit | tests | command | pytest's time (s) | wall (s) |",
        "|---:|---|---|---:|---|---:|---:|",
    ]
    for r in data["runs"]:
        ref = r["suite"] == "reference"
        lines.append(f"| {r['round'] + 1} | {r['suite']} | `{data['reference_commit'] if ref else data['current_commit']}` "
                     f"| {r['passed']} | `pytest -q{'' if ref else ' -n auto'}` | {r['pytest_seconds']:.1f} "
                     f"| {r['wall_seconds']:.1f} |")
    lines.append("")
    for key, what in (("pytest_seconds", "pytest's time"), ("wall_seconds", "wall time")):
        m = data[f"median_{key}"]
        lines.append(f"- Median {what}: reference {m['reference']:.1f} s for {data['tests']['reference']} tests, "
                     f"current {m['current']:.1f} s for {data['tests']['current']} tests; current / reference = "
                     f"**{data[f'ratio_{key}']:.3f}**.")
    lines.append("")
    (HERE / "suite_time.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
