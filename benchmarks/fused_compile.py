"""First-step compile time of ``SymbolicOptimizer(fused=True)`` against the number of tensors.

The fused path compiles its step with ``torch.compile``; the trace, and so the first step, grows
with the tensors one compiled call updates. Each call takes at most ``dsr_l2o.lowering.fused.CHUNK``
tensors (16), so a model compiles two kernels per dtype (a few more when some tensors hold
one element). The points with every tensor in one call show the time before the chunks.

Each point runs in a fresh Python process with one torch thread and an empty Inductor cache (a new
``TORCHINDUCTOR_CACHE_DIR``), as a user's first run of a new model does: N tensors, half
256 x 256 weights and half 256-long biases, the committed ``searches/default`` rule, one step
timed (compile included), then the median of 20 steps.

Usage: ``python benchmarks/fused_compile.py`` writes ``benchmarks/fused_compile.md`` and ``.json``.
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

from machine import cpu_name

HERE = Path(__file__).resolve().parent
ALL = 1_000_000
"""A chunk that holds every tensor: one compiled call, as before the chunks."""
POINTS = [(4, None), (16, None), (64, None), (256, None), (4, ALL), (16, ALL), (64, ALL)]
"""(tensors, tensors per call); None: the library's CHUNK."""


def measure(tensors: int, chunk: int) -> dict:
    import torch

    import dsr_l2o.lowering.fused as fused
    from dsr_l2o import load_result

    torch.set_num_threads(1)
    if chunk is not None:
        fused.CHUNK = chunk
    result = load_result(HERE.parent / "searches" / "default")
    gen = torch.Generator().manual_seed(0)
    params = [torch.randn((256, 256) if i % 2 == 0 else (256,), generator=gen).requires_grad_()
              for i in range(tensors)]
    opt = result.optimizer(params, fused=True)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen)
    start = time.perf_counter()
    opt.step()
    first = time.perf_counter() - start
    times = []
    for _ in range(20):
        start = time.perf_counter()
        opt.step()
        times.append(time.perf_counter() - start)
    return {"tensors": tensors, "chunk": fused.CHUNK, "params": sum(p.numel() for p in params),
            "first_step_s": first, "step_ms": sorted(times)[len(times) // 2] * 1e3,
            "fused": not opt._fused_failed}


def run_point(tensors: int, chunk: int) -> dict:
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, TORCHINDUCTOR_CACHE_DIR=cache, OMP_NUM_THREADS="1")
        out = subprocess.run([sys.executable, __file__, "--point", json.dumps([tensors, chunk])], env=env,
                             capture_output=True, text=True, check=True, cwd=HERE)
    return json.loads(out.stdout.strip().splitlines()[-1])


def to_markdown(result: dict) -> str:
    lines = ["# Fused step: first-step compile time against the number of tensors", "",
             "Written by `python benchmarks/fused_compile.py` (its docstring says how); do not edit by hand.", "",
             f"{result['date']}, {result['machine']}. Rule: `{result['formula']}` (searches/default). "
             "Each point: a fresh process, an empty Inductor cache, one torch thread.", "",
             "| tensors | parameters | tensors per compiled call | first step s (compile included) | later step ms (median of 20) |",
             "|---:|---:|---|---:|---:|"]
    for r in result["rows"]:
        chunk = "all (one call)" if r["chunk"] == ALL else str(r["chunk"])
        lines.append(f"| {r['tensors']} | {r['params']:,} | {chunk} | {r['first_step_s']:.1f} | {r['step_ms']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--point", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        sys.path.insert(0, str(HERE.parent))
        print(json.dumps(measure(*json.loads(args.point))))
        return
    import platform

    import torch

    from dsr_l2o.atomic import write_json, write_text

    rows = []
    for tensors, chunk in POINTS:
        rows.append(run_point(tensors, chunk))
        print(rows[-1], flush=True)
    formula = json.loads((HERE.parent / "searches" / "default" / "result.json").read_text())["formula"]
    result = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "machine": f"{cpu_name()} ({os.cpu_count()} logical CPUs), Python {platform.python_version()}, "
                         f"torch {torch.__version__}",
              "formula": formula, "rows": rows}
    write_json(HERE / "fused_compile.json", result)
    write_text(HERE / "fused_compile.md", to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
