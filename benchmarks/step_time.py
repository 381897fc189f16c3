"""Step time and bytes moved: SymbolicOptimizer's paths against fused and foreach torch Adam.

Every optimizer updates its own copy of the same parameters (a few weight matrices and biases,
1M and 10M parameters) with the same fixed gradients. Rules: the Adam formula of the default
grammar and the committed rule (``searches/default/result.json``, read with ``load_result``).
Paths: eager (the default), ``foreach=True`` and ``fused=True`` (``torch.compile``; its compile
runs before timing), and the exported standalone optimizer (``dsr-l2o export --format torch``) with
``fused=True``. All optimizers are timed in one process, interleaved (each repeat times every
optimizer once, starting at a different one), and each reported ratio is the median over repeats
of (time / the reference's time in the same repeat).

Bytes moved per step count each tensor a step must read or write once: the parameter, its
gradient and every state buffer are read; the parameter and every buffer are written (Adam:
7 tensors, a rule with k moving averages: 3 + 2k). The implied GB/s is those bytes over the median
step time; "bytes time" is the time those bytes take at the bandwidth of a triad
``a = b + s * c`` measured in the same process (so 1.0 means as fast as moving its own bytes).
Writes ``benchmarks/step_time.md`` and ``.json``.

Usage: ``python benchmarks/step_time.py [--device cuda] [--repeats 15] [--steps 5] [--threads 1]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dsr_l2o.atomic import write_json, write_text
from dsr_l2o.export.torch_source import torch_source
from dsr_l2o.formula import Formula, parse_formula
from dsr_l2o.optimizer import SymbolicOptimizer
from dsr_l2o.result import load_result
from machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
ADAM_FORMULA = "m_hat / (sqrt(v_hat) + 1e-8)"
SHAPES = {
    "1M": [(512, 1024), (1024,), (1024, 384), (384,), (384, 256), (256,), (256, 10), (10,)],
    "10M": [(2048, 2048), (2048,), (2048, 1536), (1536,), (1536, 1536), (1536,), (1536, 10), (10,)],
}
FUSED_ADAM, FOREACH_ADAM = "torch.optim.Adam(fused=True)", "torch.optim.Adam(foreach=True)"


def make_params(shapes, device, seed=0):
    """Parameters with fixed random gradients."""
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=gen).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).to(device) * 1e-2
        params.append(p)
    return params


def clone_params(params):
    out = []
    for p in params:
        q = p.detach().clone().requires_grad_()
        q.grad = p.grad.clone()
        out.append(q)
    return out


def state_bytes(opt: torch.optim.Optimizer) -> int:
    """Bytes of every tensor the optimizer keeps in its per-parameter state."""
    return sum(v.numel() * v.element_size() for st in opt.state.values() for v in st.values()
               if isinstance(v, torch.Tensor) and v.dim() > 0)


def moved_bytes(params, buffers: int) -> int:
    """Bytes a step must move: read parameter, gradient and buffers; write parameter and buffers."""
    return sum(p.numel() * p.element_size() for p in params) * (3 + 2 * buffers)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(opt, steps, device) -> float:
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    sync(device)
    return (time.perf_counter() - start) / steps


def triad_bandwidth(numel, device, repeats) -> float:
    """Bytes per second of ``a = b + s * c`` (two reads, one write) over ``numel`` floats."""
    a, b, c = (torch.rand(numel, device=device) for _ in range(3))
    times = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        torch.add(b, c, alpha=0.5, out=a)
        sync(device)
        times.append(time.perf_counter() - start)
    return 3 * numel * 4 / statistics.median(times)


def exported_class(formula, directory: Path, label: str):
    """The ``DiscoveredOptimizer`` class of the exported source of ``formula``."""
    formula = formula if isinstance(formula, Formula) else parse_formula(formula)
    path = directory / f"exported_{label}.py"
    write_text(path, torch_source(formula))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DiscoveredOptimizer


def optimizers(base, rules, directory: Path):
    """Name -> (optimizer, rule label, bytes moved per step)."""
    adam_bytes = moved_bytes(base, 2)
    out = {
        FUSED_ADAM: (torch.optim.Adam(clone_params(base), lr=1e-3, fused=True), "Adam", adam_bytes),
        FOREACH_ADAM: (torch.optim.Adam(clone_params(base), lr=1e-3, foreach=True), "Adam", adam_bytes),
    }
    for label, formula, lr in rules:
        for path, kw in (("eager", {}), ("foreach=True", {"foreach": True}), ("fused=True", {"fused": True})):
            opt = SymbolicOptimizer(clone_params(base), formula, lr=lr, **kw)
            out[f"SymbolicOptimizer({label}, {path})"] = (opt, label, moved_bytes(base, len(opt.state_keys)))
        exported = exported_class(formula, directory, label)(clone_params(base), lr=lr, fused=True)
        out[f"exported({label}, fused=True)"] = (exported, label, moved_bytes(base, len(opt.state_keys)))
    return out


def bench(size, shapes, device, rules, repeats, steps):
    base = make_params(shapes, device)
    with tempfile.TemporaryDirectory() as directory:
        opts = optimizers(base, rules, Path(directory))
        for opt, _, _ in opts.values():
            time_steps(opt, 2, device)  # state, kernels and the fused paths' compilation
    names = list(opts)
    times = {name: [] for name in names}
    for r in range(repeats):
        for name in names[r % len(names):] + names[: r % len(names)]:
            times[name].append(time_steps(opts[name][0], steps, device))
    bandwidth = triad_bandwidth(sum(p.numel() for p in base), device, 3 * repeats)
    rows = []
    for name in names:
        opt, rule, nbytes = opts[name]
        seconds = statistics.median(times[name])
        rows.append({
            "size": size, "numel": sum(p.numel() for p in base), "optimizer": name, "rule": rule,
            "ms": 1e3 * seconds,
            "ratio_fused_adam": statistics.median(t / a for t, a in zip(times[name], times[FUSED_ADAM])),
            "ratio_foreach_adam": statistics.median(t / a for t, a in zip(times[name], times[FOREACH_ADAM])),
            "bytes_moved": nbytes, "gb_per_s": nbytes / seconds / 1e9,
            "bytes_time_ratio": seconds / (nbytes / bandwidth),
            "state_bytes": state_bytes(opt),
        })
    return rows, bandwidth


def machine_info(device) -> str:
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{cpu_name()} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}){gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}")


def to_markdown(rows, bandwidths, rules, device, repeats, steps) -> str:
    lines = [
        "# Optimizer step time: SymbolicOptimizer's paths vs fused and foreach torch Adam",
        "",
        "Written by `benchmarks/step_time.py` (its docstring defines every column).",
        f"Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. Device: `{device}`.",
        f"Machine: {machine_info(device)}. The script pins torch to {torch.get_num_threads()} thread(s) "
        "(`--threads`), so the CPU timings do not depend on what else runs on the other cores.",
        "Rules: " + "; ".join(f"{label} `{formula}` (lr {lr:g})" for label, formula, lr in rules) + ".",
        f"Each ms/step is the median over {repeats} interleaved repeats of {steps} steps; each ratio is the",
        "median over repeats of (time / the reference's time in the same repeat). Triad bandwidth: "
        + ", ".join(f"{size} {bw / 1e9:.1f} GB/s" for size, bw in bandwidths.items()) + ".",
        "",
        "| params | optimizer | ms/step | to fused Adam | to foreach Adam | MB moved | GB/s | to bytes time | state MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} ({r['numel']:,}) | {r['optimizer']} | {r['ms']:.2f} | {r['ratio_fused_adam']:.3f} | "
                     f"{r['ratio_foreach_adam']:.3f} | {r['bytes_moved'] / 1e6:.1f} | {r['gb_per_s']:.1f} | "
                     f"{r['bytes_time_ratio']:.2f} | {r['state_bytes'] / 1e6:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps CPU timings steady)")
    parser.add_argument("--sizes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--out", default=str(Path(__file__).with_name("step_time.md")))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    committed = load_result(ROOT / "searches" / "default")
    rules = [("Adam", ADAM_FORMULA, 1e-3), ("committed", committed.formula, committed.lr)]
    rows, bandwidths = [], {}
    for size in args.sizes:
        size_rows, bandwidths[size] = bench(size, SHAPES[size], device, rules, args.repeats, args.steps)
        rows += size_rows
    text = to_markdown(rows, bandwidths, rules, device, args.repeats, args.steps)
    out = Path(args.out)
    write_text(out, text)
    write_json(out.with_suffix(".json"), {"device": str(device), "threads": torch.get_num_threads(),
                                          "bandwidth": bandwidths, "rows": rows})
    print(text)


if __name__ == "__main__":
    main()
