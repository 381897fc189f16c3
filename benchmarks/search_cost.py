"""Cost of one meta-step of the search vs unroll length K and optimizee size.

One meta-step is ``MetaTrainer.step()`` with a ``RelaxedRule`` over the default grammar: K inner
steps of the relaxed rule plus truncated back-propagation into the relaxation. ``horizon = unroll``,
so every meta-step starts a fresh episode and does the same work. Each point runs in a fresh
Python process with one torch thread:

1. a throw-away meta-step on a 16-d task (loads kernels, so the next step measures only itself);
2. one meta-step whose peak-RSS growth is read (``ru_maxrss`` after minus current RSS before);
3. one meta-step under ``saved_tensors_hooks`` summing the bytes of unique storages saved for
   backward (the autograd graph truncated BPTT keeps);
4. ``repeats`` timed meta-steps, each followed in the same process by timed plain
   ``torch.optim.Adam`` steps (loss, backward, step) on the same task; the ratio is
   ``(meta-step time / K) / Adam step time``, median over repeats.

Tasks: ``diag`` is ``0.5 sum_i h_i (w_i - c_i)^2`` (eigenvalues log-spaced from 1 to 1e-2), whose
loss costs O(n), so the rule dominates; ``dense`` is ``dsr_l2o``'s ``QuadraticTask`` (a dense
n x n Hessian: O(n^2) memory and loss, so only small n). Writes ``benchmarks/search_cost.md``
and ``.json``.

The memory sweeps (issue 14) add ``recompute_segment`` (the unroll checkpointed in segments of
that many steps and recomputed in the backward pass) and the ``population`` estimator (P
formulas x L learning rates trained as one batched, graph-free run of the task's horizon);
their largest points take one meta-step (``light``), whose peak-RSS growth and time are read.

Usage: ``python benchmarks/search_cost.py [--repeats 5] [--quick]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from machine import cpu_name
from search_cost_report import BASE_SWEEPS, FIXED_DIM, FIXED_UNROLL, conclusions, mib, to_markdown

HERE = Path(__file__).resolve().parent


class DiagonalQuadratic:
    """``0.5 sum_i h_i (w_i - c_i)^2`` with ``h`` log-spaced from 1 to ``1/condition``: O(n) loss."""

    def __init__(self, dim: int, condition: float = 100.0, seed: int = 0):
        import torch

        self.name, self.steps, self.seed, self.dim = f"diag{dim}", 100, seed, dim
        self.curvature = torch.logspace(0.0, -torch.log10(torch.tensor(condition)).item(), dim)
        self.center = torch.randn(dim, generator=torch.Generator().manual_seed(seed))

    def init(self, seed: int):
        import torch

        return [torch.randn(self.dim, generator=torch.Generator().manual_seed(int(seed)))]

    def loss(self, params, step: int):
        d = params[0] - self.center
        return 0.5 * (self.curvature * d * d).sum()

    def to(self, device):
        return self


class CountingTask:
    """Delegates to ``task`` and counts ``loss`` calls (to check a meta-step ran all K steps)."""

    def __init__(self, task):
        self.task, self.calls = task, 0
        self.name, self.steps, self.seed = task.name, task.steps, task.seed

    def init(self, seed):
        return self.task.init(seed)

    def loss(self, params, step):
        self.calls += 1
        return self.task.loss(params, step)

    def to(self, device):
        return self


class FixedFamily:
    """A family that always samples the same task."""

    name, description = "fixed", "one task"

    def __init__(self, task):
        self.task = task

    def sample(self, seed):
        return self.task


def make_task(kind: str, dim: int):
    if kind == "diag":
        return DiagonalQuadratic(dim)
    from dsr_l2o.tasks.quadratic import QuadraticTask

    return QuadraticTask(f"dense{dim}", dim, condition=100.0)


def make_trainer(task, unroll: int, relaxation: str, recompute: int = 0, estimator: str = "truncated_backprop"):
    import torch

    import dsr_l2o
    from dsr_l2o.search.config import SearchConfig
    from dsr_l2o.search.meta_train import MetaTrainer
    from dsr_l2o.search.relaxation import RelaxedRule

    config = SearchConfig(relaxation=relaxation, unroll=unroll, horizon=unroll, meta_steps=1000,
                          recompute_segment=recompute, estimator=estimator)
    rule = RelaxedRule(dsr_l2o.load_grammar(), depth=config.depth, init_lr=config.init_lr,
                       init_bias=config.init_bias)
    return MetaTrainer(rule, FixedFamily(task), config, torch.device("cpu"))


def current_rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def saved_bytes(trainer) -> tuple[int, int]:
    """Bytes and count of unique storages saved for backward during one meta-step."""
    import torch

    storages = {}

    def pack(tensor):
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage  # held, so a freed pointer is never reused
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        trainer.step()
    return sum(s.nbytes() for s in storages.values()), len(storages)


def adam_step_seconds(task, steps: int) -> float:
    import torch

    param = task.init(1)[0].clone().requires_grad_(True)
    opt = torch.optim.Adam([param], lr=1e-3)
    start = time.perf_counter()
    for t in range(steps):
        opt.zero_grad(set_to_none=True)
        task.loss([param], t).backward()
        opt.step()
    return (time.perf_counter() - start) / steps


def measure_point(spec: dict) -> dict:
    """All measurements of one (task, dim, unroll, relaxation) point, in this process."""
    import torch

    torch.set_num_threads(1)
    kind, dim, unroll, relaxation = spec["task"], spec["dim"], spec["unroll"], spec["relaxation"]
    recompute, estimator = spec.get("recompute", 0), spec.get("estimator", "truncated_backprop")
    make_trainer(DiagonalQuadratic(16), unroll, relaxation, recompute, estimator).step()
    built = time.perf_counter()
    counted = CountingTask(make_task(kind, dim))
    build_seconds = time.perf_counter() - built
    trainer = make_trainer(counted, unroll, relaxation, recompute, estimator)
    rule = trainer.rule
    shape = (f"{len(rule.terminals)} terminals ({', '.join(rule.terminals)}), {len(rule.unary)} unary, "
             f"{len(rule.binary)} binary choices, depth {rule.depth}")
    adam_step_seconds(counted.task, 3)

    rss_before, peak_before = current_rss(), peak_rss()
    start = time.perf_counter()
    record = trainer.step()
    first_seconds = time.perf_counter() - start
    peak_after = peak_rss()
    rss_growth = peak_after - rss_before if peak_after > peak_before else None
    if spec.get("light"):
        a = adam_step_seconds(counted.task, 5)
        return {**spec, "params": dim, "build_seconds": build_seconds, "meta_step_s": first_seconds,
                "meta_step_min_s": first_seconds, "meta_step_s_all": [first_seconds], "adam_step_min_ms": 1e3 * a,
                "inner_step_ms": 1e3 * first_seconds / unroll, "adam_step_ms": 1e3 * a,
                "ratio_to_adam": first_seconds / unroll / a, "meta_step_in_adam_steps": first_seconds / a,
                "saved_bytes": None, "saved_storages": None, "saved_bytes_per_param_step": None,
                "rss_growth_bytes": rss_growth, "peak_rss_bytes": peak_after, "all_complete": None,
                "skip_reasons": [record["reason"]] if record.get("reason") else [], "relaxation_shape": shape}

    bytes_saved, storages = saved_bytes(trainer)

    times, adam, ratios, complete, skipped = [], [], [], [], []
    adam_steps = max(5, min(50, 2_000_000 // max(dim, 1)))
    for _ in range(spec["repeats"]):
        counted.calls = 0
        start = time.perf_counter()
        record = trainer.step()
        seconds = time.perf_counter() - start
        # episode start + K inner + final (+ K recomputed in the backward pass); the population runs the engine
        complete.append(None if estimator == "population" else counted.calls == unroll + 2 + (unroll if recompute else 0))
        skipped.append(record.get("reason"))
        a = adam_step_seconds(counted.task, adam_steps)
        times.append(seconds)
        adam.append(a)
        ratios.append(seconds / unroll / a)
    return {
        **spec, "params": dim, "build_seconds": build_seconds,
        "meta_step_s": statistics.median(times), "meta_step_min_s": min(times), "meta_step_s_all": times,
        "adam_step_min_ms": 1e3 * min(adam),
        "inner_step_ms": 1e3 * statistics.median(times) / unroll,
        "adam_step_ms": 1e3 * statistics.median(adam), "ratio_to_adam": statistics.median(ratios),
        "meta_step_in_adam_steps": statistics.median(r * unroll for r in ratios),
        "saved_bytes": bytes_saved, "saved_storages": storages,
        "saved_bytes_per_param_step": bytes_saved / dim / unroll,
        "rss_growth_bytes": rss_growth, "peak_rss_bytes": peak_after,
        "all_complete": None if None in complete else all(complete),
        "skip_reasons": sorted({r for r in skipped if r}), "relaxation_shape": shape,
    }


def run_point(spec: dict) -> dict:
    """``measure_point`` in a fresh interpreter (so peak RSS belongs to this point alone)."""
    done = subprocess.run([sys.executable, __file__, "--point", json.dumps(spec)],
                          capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"point {spec} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit(xs, ys) -> dict:
    """Least-squares line ``y = a + b x`` (with R^2) and the log-log slope (growth exponent)."""
    import numpy as np

    x, y = np.asarray(xs, float), np.asarray(ys, float)
    b, a = np.polyfit(x, y, 1)
    r2 = 1.0 - float(((y - (a + b * x)) ** 2).sum()) / max(float(((y - y.mean()) ** 2).sum()), 1e-300)
    exponent = float(np.polyfit(np.log(x), np.log(y), 1)[0])
    return {"intercept": float(a), "slope": float(b), "r2": r2, "loglog_exponent": exponent}


def plan(quick: bool, repeats: int) -> list[dict]:
    unrolls = [5, 10, 20] if quick else [5, 10, 20, 40]
    dims = [100, 1_000, 10_000] if quick else [100, 1_000, 10_000, 100_000]
    specs = [{"sweep": "unroll", "task": "diag", "dim": FIXED_DIM, "unroll": k, "relaxation": "sampled"}
             for k in unrolls]
    specs += [{"sweep": "params", "task": "diag", "dim": n, "unroll": FIXED_UNROLL, "relaxation": "sampled"}
              for n in dims if n != FIXED_DIM]
    specs += [{"sweep": "dense", "task": "dense", "dim": n, "unroll": FIXED_UNROLL, "relaxation": "sampled"}
              for n in (100, 1_000, 3_000)]
    specs += [{"sweep": "relaxation", "task": "diag", "dim": FIXED_DIM, "unroll": FIXED_UNROLL,
               "relaxation": "soft"}]
    for spec in specs:
        spec["repeats"] = repeats
    big = 100_000 if quick else 1_000_000
    memory = [{"sweep": "recompute", "task": "diag", "dim": n, "unroll": 20, "relaxation": "sampled", "recompute": r,
               "repeats": max(2, repeats // 2)} for n in (100, 10_000) for r in (0, 1)]
    memory += [{"sweep": "recompute", "task": "diag", "dim": 100_000, "unroll": 20, "relaxation": "sampled",
                "recompute": r, "repeats": 1, "light": True} for r in (0, 1, 4)]
    memory += [{"sweep": "target", "task": "diag", "dim": big, "unroll": 20, "relaxation": "sampled", "recompute": 1,
                "repeats": 1, "light": True}]
    memory += [{"sweep": "population", "task": "diag", "dim": n, "unroll": FIXED_UNROLL, "relaxation": "sampled",
                "estimator": "population", "repeats": 1, "light": True} for n in (10_000, 30_000)]
    return specs + memory




def machine_info() -> str:
    import torch

    cpu = cpu_name()
    return (f"{cpu} ({os.cpu_count()} logical CPUs, torch threads 1); Python {platform.python_version()}, "
            f"torch {torch.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="smaller sweeps (a smoke run)")
    parser.add_argument("--point", help=argparse.SUPPRESS)
    parser.add_argument("--render", action="store_true", help="rewrite the .md from the committed .json")
    parser.add_argument("--out", default=str(HERE / "search_cost.md"))
    args = parser.parse_args()
    if args.point:
        print(json.dumps(measure_point(json.loads(args.point))))
        return
    if args.render:
        from dsr_l2o.atomic import write_text

        out = Path(args.out)
        write_text(out, to_markdown(json.loads(out.with_suffix(".json").read_text())))
        return
    import numpy as np

    from dsr_l2o.atomic import write_json, write_text

    started, load_before = time.perf_counter(), " / ".join(f"{x:.2f}" for x in os.getloadavg())
    every = []
    for spec in plan(args.quick, args.repeats):
        row = run_point(spec)
        every.append(row)
        print(f"{spec['sweep']:10s} {spec['task']:5s} n={spec['dim']:>9,} K={spec['unroll']:>2} {spec['relaxation']:7s} "
              f"recompute {spec.get('recompute', 0)} {spec.get('estimator', 'bptt'):10s} "
              f"{row['meta_step_s']:.3f}s ratio {row['ratio_to_adam']:.0f} saved {mib(row['saved_bytes'])} MiB "
              f"rss {mib(row['rss_growth_bytes'])} MiB", flush=True)
    rows = [r for r in every if r["sweep"] in BASE_SWEEPS]
    shapes = {r["relaxation_shape"] for r in rows}
    if len(shapes) > 1:
        raise SystemExit(f"the default grammar changed during the run ({' vs '.join(sorted(shapes))}); run again")
    unroll_rows = sorted([r for r in rows if r["task"] == "diag" and r["dim"] == FIXED_DIM
                          and r["relaxation"] == "sampled"], key=lambda r: r["unroll"])
    param_rows = sorted([r for r in rows if r["task"] == "diag" and r["unroll"] == FIXED_UNROLL
                         and r["relaxation"] == "sampled"], key=lambda r: r["params"])
    top = param_rows[-2:]
    fits = {
        "time_vs_unroll": fit([r["unroll"] for r in unroll_rows], [r["meta_step_min_s"] for r in unroll_rows]),
        "adam_units_vs_unroll": fit([r["unroll"] for r in unroll_rows],
                                    [r["meta_step_in_adam_steps"] for r in unroll_rows]),
        "saved_vs_unroll": fit([r["unroll"] for r in unroll_rows], [r["saved_bytes"] for r in unroll_rows]),
        "time_vs_params": fit([r["params"] for r in param_rows], [r["meta_step_min_s"] for r in param_rows]),
        "saved_vs_params": fit([r["params"] for r in param_rows], [r["saved_bytes"] for r in param_rows]),
        "time_vs_params_top_exponent": float(np.log(top[1]["meta_step_min_s"] / top[0]["meta_step_min_s"])
                                             / np.log(top[1]["params"] / top[0]["params"])),
    }
    result = {
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine_info(),
        "repeats": args.repeats, "quick": args.quick, "load_before": load_before,
        "load_after": " / ".join(f"{x:.2f}" for x in os.getloadavg()),
        "wall_seconds": time.perf_counter() - started, "rows": every, "fits": fits,
        "conclusions": conclusions(rows, fits),
    }
    out = Path(args.out)
    write_json(out.with_suffix(".json"), result)
    write_text(out, to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()
