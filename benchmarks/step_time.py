"""Step time and state bytes: SymbolicOptimizer with the Adam formula vs torch.optim.Adam.

Both optimizers update their own copy of the same parameters (a few weight matrices and
biases, 1M and 10M parameters) with the same fixed gradients. Timings are interleaved in one
process (Adam, then each SymbolicOptimizer variant, repeated), and the reported number is the
median over repeats of the per-repeat time ratio to Adam. Writes ``benchmarks/step_time.md``.

Usage: ``python benchmarks/step_time.py [--device cuda] [--repeats 15] [--threads 1] [--out FILE]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dsr_l2o.optimizer import SymbolicOptimizer
from machine import cpu_name

ADAM_FORMULA = "m_hat / (sqrt(v_hat) + 1e-8)"
SHAPES = {
    "1M": [(512, 1024), (1024,), (1024, 384), (384,), (384, 256), (256,), (256, 10), (10,)],
    "10M": [(2048, 2048), (2048,), (2048, 1536), (1536,), (1536, 1536), (1536,), (1536, 10), (10,)],
}


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
               if isinstance(v, torch.Tensor))


def time_steps(opt, steps, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / steps


def bench(label, shapes, device, repeats, steps):
    base = make_params(shapes, device)
    optimizers = {"torch.optim.Adam(foreach=True)": torch.optim.Adam(clone_params(base), lr=1e-3, foreach=True)}
    for name, foreach in (("SymbolicOptimizer (default path)", None), ("SymbolicOptimizer(foreach=True)", True),
                          ("SymbolicOptimizer(foreach=False)", False)):
        optimizers[name] = SymbolicOptimizer(clone_params(base), ADAM_FORMULA, lr=1e-3, foreach=foreach)
    for opt in optimizers.values():
        time_steps(opt, 3, device)
    times = {name: [] for name in optimizers}
    for _ in range(repeats):
        for name, opt in optimizers.items():
            times[name].append(time_steps(opt, steps, device))
    adam = "torch.optim.Adam(foreach=True)"
    rows = []
    for name, opt in optimizers.items():
        ratios = [t / a for t, a in zip(times[name], times[adam])]
        rows.append({
            "size": label, "numel": sum(p.numel() for p in base), "optimizer": name,
            "ms": 1e3 * statistics.median(times[name]), "ratio": statistics.median(ratios),
            "state_bytes": state_bytes(opt), "state_ratio": state_bytes(opt) / state_bytes(optimizers[adam]),
        })
    return rows


def machine_info(device) -> str:
    cpu = cpu_name()
    gpu = f", GPU {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return (f"{cpu} ({os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}){gpu}; "
            f"Python {platform.python_version()}, torch {torch.__version__}, {platform.system()} {platform.release()}")


def to_markdown(rows, device, repeats, steps) -> str:
    lines = [
        "# Optimizer step time: SymbolicOptimizer (Adam formula) vs torch.optim.Adam",
        "",
        f"Formula `{ADAM_FORMULA}` (default grammar). Written by `benchmarks/step_time.py`.",
        f"Date: {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}. Device: `{device}`.",
        f"Machine: {machine_info(device)}.",
        f"Each time is the median over {repeats} interleaved repeats of {steps} steps; the ratio is the",
        "median over repeats of (time / Adam's time in the same repeat). State bytes count every",
        "tensor in `optimizer.state` (Adam's includes its 4-byte `step` tensors).",
        "",
        "| params | optimizer | ms/step | time ratio to Adam | state bytes | state ratio |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['size']} ({r['numel']:,}) | {r['optimizer']} | {r['ms']:.3f} | {r['ratio']:.3f} | "
                     f"{r['state_bytes']:,} | {r['state_ratio']:.3f} |")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 keeps CPU timings steady)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("step_time.md")))
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    rows = []
    for label, shapes in SHAPES.items():
        rows += bench(label, shapes, device, args.repeats, args.steps)
    text = to_markdown(rows, device, args.repeats, args.steps)
    write_atomic(Path(args.out), text)
    print(text)


if __name__ == "__main__":
    main()
