"""The default search on "another CPU": the same seeds with other floating-point kernels.

    python benchmarks/rounding.py [--seeds 5] [--jobs 2] [--runs runs/rounding]
                                  [--reference benchmarks/search_seeds.json] [--native-runs runs/search_seeds]
                                  [--grammar grammars/corrected.yaml --name corrected]

A machine with another CPU rounds differently because torch picks other kernels for it. This
script makes this machine do the same: each search runs in a child process with
``ATEN_CPU_CAPABILITY=default`` (torch's scalar kernels instead of its AVX2/AVX-512 ones),
``MKL_ENABLE_INSTRUCTIONS=SSE4_2`` (MKL's matrix products as on an old CPU) and
``ONEDNN_MAX_CPU_ISA=SSE41`` (the same for oneDNN's convolutions). A probe first shows that the
rounding really changes: tuned Adam's score on ``val_cnn`` in both settings. Each seed's formula,
lr and validation ratio are then set beside those of the native runs in
``benchmarks/search_seeds.json`` (``search_seeds.py``, same code, same seeds). A finished run in
``--runs`` is reused. Writes rounding.md/.json beside this file (``rounding_NAME.md/.json`` with
``--name``, for the searches of ``search_seeds.py --grammar G --name NAME``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
EMULATED = {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"}
PROBE = """
import json, torch
from dsr_l2o.engine import tune_batched
from dsr_l2o.evaluation import get_baseline
from dsr_l2o.evaluation.protocol import EvalProtocol
from dsr_l2o.tasks import get_task
torch.set_num_threads(1)
result = tune_batched(get_baseline("adam"), get_task("val_cnn"), EvalProtocol(seeds=(0,)))
print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(), "score": result.best_score,
                  "lr": result.best_lr}))
"""


def _env(emulated: bool) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in EMULATED}
    return {**env, **EMULATED} if emulated else env


def probe(emulated: bool) -> dict:
    """Tuned Adam on val_cnn (seed 0) in a child process, natively or with the emulated kernels."""
    out = subprocess.run([sys.executable, "-c", PROBE], env=_env(emulated), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_seed(seed: int, runs: Path, grammar: str | None = None) -> dict:
    """``dsr-l2o search --seed SEED`` with the emulated kernels (reused when it has finished)."""
    out, timing = runs / f"seed{seed}", runs / f"seed{seed}.seconds"
    if not (out / "result.json").is_file():
        if out.exists():
            import shutil

            shutil.rmtree(out)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "dsr_l2o.cli", "search", *([grammar] if grammar else []), "--seed",
                        str(seed), "--out", str(out), "--quiet"],
                       env=_env(True), check=True, stdout=subprocess.DEVNULL)
        timing.write_text(f"{time.perf_counter() - start:.1f}")
    data = json.loads((out / "result.json").read_text())
    lrs = data["validation"]["best_lrs"]
    ratios = {c["formula"]: c["score_ratio_to_adam"] for c in data["candidates"] if c.get("score_ratio_to_adam")}
    return {"seed": seed, "formula": data["formula"], "stage": data["stage"], "lr": data["lr"],
            "argmax": data.get("relaxation_argmax"), "validation_ratio": data["validation"]["score_ratio_to_adam"],
            "candidates": ratios, "best_lrs": lrs, "seconds": float(timing.read_text())}


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(HERE.parent))
    except ValueError:
        return str(path)


def _moved(row: dict) -> str:
    if "lr_moved" not in row:
        return "(no native run)"
    return ", ".join(f"{t} {a:g} -> {b:g}" for t, (a, b) in row["lr_moved"].items()) or "none"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--runs", type=Path, default=Path("runs/rounding"))
    parser.add_argument("--reference", type=Path, default=HERE / "search_seeds.json")
    parser.add_argument("--grammar", default=None, help="grammar of the searches [default: the default grammar]")
    parser.add_argument("--name", default=None, help="suffix of the output files")
    parser.add_argument("--native-runs", type=Path, default=Path("runs/search_seeds"),
                        help="the native runs of search_seeds.py, for each task's best lr (optional)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(HERE))
    from machine import cpu_name

    args.runs.mkdir(parents=True, exist_ok=True)
    reference = {r["seed"]: r for r in json.loads(args.reference.read_text())["seeds"]}
    start = time.perf_counter()
    probes = {"native": probe(False), "emulated": probe(True)}
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda s: run_seed(s, args.runs, args.grammar), range(args.seeds)))
    for row in rows:
        native = reference.get(row["seed"], {})
        row["native"] = {k: native.get(k) for k in ("formula", "lr", "validation_ratio", "argmax")}
        row["same_formula"] = native.get("formula") == row["formula"]
        row["same_lr"] = native.get("lr") == row["lr"]
        native_result = args.native_runs / f"seed{row['seed']}" / "result.json"
        if native_result.is_file():
            native_lrs = json.loads(native_result.read_text())["validation"]["best_lrs"]
            row["lr_moved"] = {t: [native_lrs.get(t), lr] for t, lr in row["best_lrs"].items() if native_lrs.get(t) != lr}
    seconds = time.perf_counter() - start
    stem = f"rounding_{args.name}" if args.name else "rounding"
    (HERE / f"{stem}.json").write_text(json.dumps({"emulated": EMULATED, "grammar": args.grammar, "probes": probes,
                                                   "seeds": rows}, indent=1) + "\n")
    same = sum(r["same_formula"] for r in rows)
    relative = abs(probes["emulated"]["score"] - probes["native"]["score"]) / abs(probes["native"]["score"])
    lines = [
        "# The default search on another CPU's rounding" + (f", grammar `{args.grammar}`" if args.grammar else ""), "",
        f"Written by `python benchmarks/rounding.py {' '.join(sys.argv[1:]) or '--seeds 5'}`; do not edit by hand. "
        f"{dt.date.today()}, {cpu_name()}, {seconds:.0f} s in all (finished runs in `--runs` are reused and not re-timed).", "",
        "Each search runs with " + ", ".join(f"`{k}={v}`" for k, v in EMULATED.items()) + ": torch's scalar kernels, "
        "and MKL's and oneDNN's code paths for an old CPU, as another machine would pick other kernels. "
        f"The native runs are those of `{_shown(args.reference)}` (same code, same seeds, "
        f"torch's {probes['native']['capability']} kernels).", "",
        f"The rounding does change: tuned Adam on `val_cnn` (seed 0) scores {probes['native']['score']!r} natively and "
        f"{probes['emulated']['score']!r} emulated ({probes['emulated']['capability']} kernels), a relative difference of "
        f"{relative:.1e}.", "",
        f"**{same} of {len(rows)} seeds return the same formula as the native run.**", "",
        "| seed | formula (emulated) | formula (native) | lr emulated / native | validation / Adam emulated / native "
        "| relaxation argmax emulated / native | task best lrs that moved (native -> emulated) | search seconds |",
        "|---:|---|---|---|---|---|---|---:|",
    ]
    for r in rows:
        n = r["native"]
        lines.append(f"| {r['seed']} | `{r['formula']}` | `{n['formula']}` | {r['lr']} / {n['lr']} | "
                     f"{r['validation_ratio']:.4f} / {n['validation_ratio']:.4f} | `{r['argmax']}` / `{n['argmax']}` | "
                     f"{_moved(r)} | {r['seconds']:.0f} |")
    lines += ["", "Candidates of each emulated run with their one-seed validation ratio to tuned Adam:", ""]
    for r in rows:
        shown = ", ".join(f"`{f}` {v:.3g}" for f, v in sorted(r["candidates"].items(), key=lambda kv: kv[1]))
        lines.append(f"- seed {r['seed']}: {shown}")
    (HERE / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
