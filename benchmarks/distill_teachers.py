"""Distil every baseline optimizer with `dsr-l2o distil`'s defaults and report what comes back.

For each teacher: the formula chosen, the share of the teacher's update energy it explains (R^2),
its lr against the teacher's (0.01) and the wall time. Lion is distilled both in the default
grammar and in `grammars/lion.yaml`, whose operands are Lion's own. Writes distill_teachers.md
beside this file. Usage: python benchmarks/distill_teachers.py
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEACHERS = [(name, None) for name in ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "lion",
                                      "powersign", "addsign")] + [("lion", "grammars/lion.yaml")]


def main() -> None:
    import torch

    from dsr_l2o.distill import distil

    from machine import cpu_name

    rows = []
    for teacher, grammar in TEACHERS:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = distil(teacher, REPO / grammar if grammar else None, out=Path(tmp) / "out")
            seconds = time.perf_counter() - started
        rows.append(f"| {teacher} | {grammar or 'default'} | `{result.formula.text}` | {result.data['r2']:.4f} "
                    f"| {result.lr:.3g} | {seconds:.1f} |")
        print(rows[-1], flush=True)
    lines = ["# Distilling the baselines", "",
             "Written by `python benchmarks/distill_teachers.py`; do not edit by hand.", "",
             f"{dt.date.today().isoformat()}, {cpu_name()}, torch {torch.__version__}; `dsr-l2o distil` defaults "
             "(8 tasks of the `mixed` family, 100 steps at lr 0.01, 300 regression steps, depth 2).", "",
             "| teacher | grammar | formula | R² | lr (teacher: 0.01) | seconds |", "|---|---|---|---:|---:|---:|",
             *rows, ""]
    Path(__file__).with_suffix(".md").write_text("\n".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
