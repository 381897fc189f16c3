"""Train the LSTM teacher, distil it, and compare the four on test tasks under the fair protocol.

    python benchmarks/l2o_teacher.py

1. `dsr-l2o l2o train` defaults (the search's family `mixed`, unroll 20, horizon 100, 300 meta-steps):
   the checkpoint is written to benchmarks/l2o_teacher/ (l2o.pt, l2o.json).
2. `dsr-l2o distil l2o:benchmarks/l2o_teacher` defaults.
3. The LSTM optimizer (as a torch.optim.Optimizer, its lr tuned like every other), the distilled
   formula, tuned Adam and the searched rule (searches/default/result.json) are tuned on the test
   tasks mlp_diabetes, rosenbrock_10d and quadratic_wellcond: none is a training or validation
   task of the search (the families skip 20-d quadratics, draw Rosenbrock at dim 3-8 with
   curvature 5-50, and never the diabetes data) and none was used to train or select the LSTM
   or the distilled formula.
Writes l2o_teacher.md beside this file.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TEST_TASKS = ("mlp_diabetes", "rosenbrock_10d", "quadratic_wellcond")


def main() -> None:
    import torch

    from dsr_l2o import load_result
    from dsr_l2o.distill import distil
    from dsr_l2o.evaluation import EvalProtocol, OptimizerSpec, compare, formula_spec, get_baseline
    from dsr_l2o.l2o import L2OOptimizer, L2OTrainConfig, load_l2o, train_and_save
    from dsr_l2o.optimizer import SymbolicOptimizer
    from dsr_l2o.tasks import get_task

    from machine import cpu_name

    torch.set_num_threads(1)
    out = HERE / "l2o_teacher"
    shutil.rmtree(out, ignore_errors=True)
    config = L2OTrainConfig()
    trained = train_and_save(config, out, on_step=lambda r: print(f"meta-step {r['step']}: {r['meta_loss']}")
                             if r["step"] % 50 == 0 else None)
    print(f"trained in {trained.seconds:.0f} s, lr {trained.lr:.4g}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        distilled = distil(f"l2o:{out.relative_to(REPO)}" if Path.cwd() == REPO else f"l2o:{out}",
                           out=Path(tmp) / "d", log=print)
        distil_seconds = time.perf_counter() - started
    data = distilled.data
    print(f"distilled: {distilled.formula.text} R^2 {data['r2']:.6f}", flush=True)
    searched = load_result(REPO / "searches" / "default").formula  # in the grammar it was searched in
    net, _ = load_l2o(out)
    specs = [OptimizerSpec("lstm", lambda params, lr: L2OOptimizer(params, net, lr=lr)),
             formula_spec(distilled.formula, name="distilled"),
             get_baseline("adam"),
             formula_spec(searched, name="searched")]
    protocol = EvalProtocol()
    started = time.perf_counter()
    comparison = compare(specs, [get_task(name) for name in TEST_TASKS], protocol)
    compare_seconds = time.perf_counter() - started
    memory = {"lstm": net.config.state_floats + 2,
              "distilled": len(SymbolicOptimizer([torch.zeros(1)], distilled.formula).state_keys),
              "adam": 2, "searched": len(SymbolicOptimizer([torch.zeros(1)], searched).state_keys)}
    rows = []
    for task in TEST_TASKS:
        cells = []
        for spec in specs:
            r = comparison.results[task][spec.name]
            ratio = comparison.ratio(task, spec.name, "adam")
            cells.append(f"{r.best_score:.4g} (lr {r.best_lr:.3g}, {ratio:.3g}x)" if ratio is not None
                         else f"{r.best_score:.4g}")
        rows.append(f"| {task} | " + " | ".join(cells) + " |")
    geo = " | ".join(f"{comparison.geomean_ratio(s.name, 'adam'):.3g}" for s in specs)
    lines = [
        "# A neural learned optimizer as a teacher", "",
        "Written by `python benchmarks/l2o_teacher.py`; do not edit by hand.", "",
        f"{dt.date.today().isoformat()}, {cpu_name()}, torch {torch.__version__}, one thread.", "",
        "## Training", "",
        f"`dsr-l2o l2o train` defaults: a coordinate-wise LSTM, {config.layers} layers of {config.hidden} units, "
        "RNNprop inputs (m_hat / sqrt(v_hat), g / sqrt(v_hat)), tanh output times a learned step size; "
        f"meta-trained on `{config.tasks}` (the search's family) by truncated back-propagation, unroll "
        f"{config.unroll}, horizon {config.horizon}, {config.meta_steps} meta-steps, the search's bounded "
        "log-loss meta-objective.", "",
        f"Trained in **{trained.seconds:.0f} s** ({trained.episodes} tasks, {trained.skipped} meta-steps skipped, "
        f"mean meta-loss of the last 25 truncations {trained.final_meta_loss:+.3f}); learned lr {trained.lr:.4g}. "
        "Checkpoint: `benchmarks/l2o_teacher/` (loads with `torch.load(weights_only=True)`).", "",
        "## Distilled", "",
        f"`dsr-l2o distil l2o:benchmarks/l2o_teacher` (defaults, {distil_seconds:.0f} s): "
        f"**`{distilled.formula.text}`**, R² {data['r2']:.4f} on the fit tasks, held-out relative error "
        f"{data['heldout_error']:.3g}, exact: {'yes' if data['exact'] else 'no'}.", "",
        f"Note: {data['note']}", "",
        "## Test tasks", "",
        f"Fair protocol (`dsr_l2o.evaluation.compare`): lrs {protocol.lrs[0]:g} to {protocol.lrs[-1]:g} "
        f"({len(protocol.lrs)} values, edges extended), seeds {', '.join(map(str, protocol.seeds))}, score = mean "
        "training loss of the last 10% of steps (lower is better), each optimizer at its own best lr; the ratio "
        f"is to tuned Adam in the same process ({compare_seconds:.0f} s). Test tasks: {', '.join(TEST_TASKS)}; "
        "none was used to train, distil or select any of these rules.", "",
        "| task | LSTM | distilled | Adam | searched `" + searched.text + "` |",
        "|---|---|---|---|---|", *rows,
        f"| geometric mean / Adam | {geo} |", "",
        "## State memory per parameter", "",
        "| optimizer | floats per parameter |", "|---|---:|",
        f"| LSTM | {memory['lstm']} ({net.config.state_floats} hidden + cell, 2 moving averages) |",
        f"| distilled `{distilled.formula.text}` | {memory['distilled']} |",
        f"| Adam | {memory['adam']} |",
        f"| searched `{searched.text}` | {memory['searched']} |", "",
    ]
    (HERE / "l2o_teacher.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
