"""Time `dsr-l2o search` with no arguments end to end, and check it reproduces searches/default.

Runs the command as a user would (a fresh process, into a temporary directory), then compares the
fresh result.json with the committed `searches/default/result.json` (formula, lr, candidates,
validation scores). Its quality on the test tasks is in search_seeds.md (seed 0 is this run).
Writes default_search.md beside this file. With ``--keep DIR`` the fresh run directory is kept
there afterwards (``--keep searches/default`` regenerates the committed one from this run).
With ``--workers N`` the search runs with that many workers (default: its own ``auto``) and the
page is ``default_search_workersN.md``; ``--page NAME`` names the page (a run on another machine).
Usage: python benchmarks/default_search.py [--device cpu] [--keep DIR] [--workers N] [--page NAME]
"""

from __future__ import annotations

import argparse
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

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from machine import cpu_name

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep the fresh run directory here (replacing it)")
    parser.add_argument("--workers", type=int, default=None, help="workers of the search [default: auto]")
    parser.add_argument("--page", default=None, help="name of the page written [default: default_search.md]")
    args = parser.parse_args()
    extra = (["--device", args.device] if args.device else []) + (["--workers", str(args.workers)] if args.workers else [])
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dsr_l2o.cli", "search", "--out", f"{tmp}/run", "--quiet", *extra],
                       check=True, cwd=REPO)
        seconds = time.perf_counter() - started
        fresh = json.loads(Path(f"{tmp}/run/result.json").read_text())
        committed = json.loads((REPO / "searches/default/result.json").read_text())
        if args.keep is not None:
            import shutil

            shutil.rmtree(args.keep, ignore_errors=True)
            shutil.copytree(f"{tmp}/run", args.keep)
    same = {k: fresh[k] == committed[k] for k in ("formula", "lr", "candidates", "validation")}
    lines = [
        "# Default search: time and reproduction", "",
        f"Written by `{' '.join(['python benchmarks/default_search.py', *sys.argv[1:]])}` on "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC ({cpu_name()}, {os.cpu_count()} CPUs, load average "
        f"{load_before:.1f} at the start and {os.getloadavg()[0]:.1f} at the end, torch {torch.__version__}).", "",
        f"- `{' '.join(['dsr-l2o search', *extra])}`{'' if extra else ' with no arguments'} (device {fresh.get('device')}): "
        f"**{seconds / 60:.1f} minutes** ({seconds:.0f} s) "
        "wall clock, all phases included (meta-training "
        f"{fresh['metrics']['seconds']:.0f} s, then the candidates on the validation tasks, "
        f"workers: {fresh['config'].get('workers', 1)}).",
        f"- Formula **`{fresh['formula']}`** (stage `{fresh['stage']}`), lr {fresh['lr']}.",
        "- It reproduces the `searches/default/result.json` committed before this run: "
        + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()) + ".",
        *_candidate_changes(committed["candidates"], fresh["candidates"]),
    ]
    page = args.page or (f"default_search_workers{args.workers}.md" if args.workers else "default_search.md")
    out = Path(__file__).with_name(page)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


def _candidate_changes(before: list[dict], after: list[dict]) -> list[str]:
    """One line per candidate whose record differs between the two runs."""
    old = {c["formula"]: c for c in before}
    new = {c["formula"]: c for c in after}
    lines = []
    for text in dict.fromkeys([*old, *new]):
        a, b = old.get(text), new.get(text)
        if a == b:
            continue
        if a is None or b is None:
            lines.append(f"  - `{text}`: {'new' if a is None else 'gone'} in this run.")
        else:
            fields = ", ".join(k for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k))
            why = f" (now rejected: {b['rejected']})" if b.get("rejected") and not a.get("rejected") else ""
            lines.append(f"  - `{text}`: {fields} differ{why}.")
    return lines


if __name__ == "__main__":
    main()
