"""Distil 17 teachers with `dsr-l2o distil`'s defaults; gplearn on the same traces side by side.

    python benchmarks/distill_teachers.py                    # ours on every teacher, then the table
    python benchmarks/distill_teachers.py --gplearn 0 3 9    # gplearn on teachers 0, 3, 9 (cached), then the table

Teachers: every baseline, PowerSign, AddSign, Grams, cautious momentum, a Lion-like sign(m + c*g),
a rule with a weight term, the earlier searched rule, and module:Class teachers (lion_pytorch:Lion,
torch.optim:RMSprop with alpha 0.9). For each: the formula reported, R^2 on the fit episodes,
the held-out relative error (exact: <= 1e-6, a positive multiple of the teacher's update), the
wall time of `distil()` (record + search + suggestions), and for teachers outside the grammar
the operand the result suggests. gplearn's SymbolicRegressor (population 2000, 30 generations,
the grammar's operators, parsimony 0.001) is fitted to 500 rows of the same fit episodes (about 40 s each here; 2000 rows took 108 s)
(identical recording: same seed) and checked on the same held-out rows by the same criterion.
gplearn takes minutes per teacher, so its results are cached in distill_teachers_gplearn.json
(by teacher) and the table says which teachers it was run on. PySR needs a Julia runtime, which
cannot be installed offline here, so it is not run. Writes distill_teachers.md (and
distill_teachers.json, our rows) beside this file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GPLEARN_ROWS = 500
HERE = Path(__file__).resolve().parent
GPLEARN_CACHE = HERE / "distill_teachers_gplearn.json"
OURS = HERE / "distill_teachers.json"
LION = str(REPO / "grammars/lion.yaml")
# (teacher, grammar file or None, keyword arguments, in the grammar?)
TEACHERS = [
    ("sgd", None, {}, True), ("momentum", None, {}, True), ("nesterov", None, {}, True),
    ("rmsprop", None, {}, False), ("adam", None, {}, True), ("adamw", None, {}, True),
    ("lion", None, {}, False), ("lion", LION, {}, True),
    ("powersign", None, {}, True), ("addsign", None, {}, True),
    ("sign(g) * abs(m_tilde)", None, {}, True), ("m + sign(g) * abs(m)", None, {}, True),
    ("sign(m + 0.1 * g)", None, {}, True), ("m_tilde + 0.1 * w", None, {}, True),
    ("m + 0.2 * sign(g) * abs(m)", None, {}, True),
    ("lion_pytorch:Lion", LION, {}, True), ("torch.optim:RMSprop", None, {"alpha": 0.9}, False),
]
LABELS = {"sign(g) * abs(m_tilde)": "Grams", "m + sign(g) * abs(m)": "cautious momentum",
          "sign(m + 0.1 * g)": "Lion-like", "m_tilde + 0.1 * w": "weight term",
          "m + 0.2 * sign(g) * abs(m)": "earlier searched rule"}


def gplearn_fit(fit, heldout, names, seed=0):
    """gplearn on ``fit`` (GPLEARN_ROWS rows), verified on ``heldout`` like ours: (program, R^2, error, seconds)."""
    import numpy as np
    from gplearn.functions import make_function
    from gplearn.genetic import SymbolicRegressor

    from dsr_l2o.distill.exact import EXACT_TOLERANCE

    sign = make_function(function=np.sign, name="sign", arity=1)
    exp = make_function(function=lambda x: np.exp(np.clip(x, -50.0, 20.0)), name="exp", arity=1)
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(fit))[:GPLEARN_ROWS]
    x_fit = np.stack([fit.operands[n].numpy() for n in names], axis=1)
    y_fit, w_fit = fit.direction.numpy(), fit.weight.numpy()
    model = SymbolicRegressor(population_size=2000, generations=30, function_set=("add", "sub", "mul", "div", "sqrt",
                              "log", "abs", "neg", sign, exp), metric="mse", parsimony_coefficient=0.001,
                              random_state=seed, n_jobs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x_fit[rows], y_fit[rows], sample_weight=w_fit[rows])
    seconds = time.perf_counter() - started
    f = model.predict(x_fit)
    den = float(np.sum(w_fit * f * f))
    alpha = float(np.sum(w_fit * f * y_fit)) / den if den > 0 else 0.0
    r2 = 1 - float(np.sum(w_fit * (alpha * f - y_fit) ** 2) / np.sum(w_fit * y_fit**2))
    x_held = np.stack([heldout.operands[n].numpy() for n in names], axis=1)
    y_held, w_held = heldout.direction.numpy(), heldout.weight.numpy()
    g = model.predict(x_held)
    error = math.sqrt(float(np.sum(w_held * (alpha * g - y_held) ** 2) / np.sum(w_held * y_held**2)))
    program = str(model._program)
    for i, n in enumerate(names):
        program = program.replace(f"X{i}", n) if f"X{i}" in program else program
    return program, r2, error, alpha > 0 and error <= EXACT_TOLERANCE, seconds


def _key(teacher, grammar_file, kwargs) -> str:
    return f"{teacher} | {'lion' if grammar_file else 'default'} | {kwargs}"


def run_ours() -> dict:
    """``distil()`` with the defaults on every teacher: the table's rows by teacher key."""
    from dsr_l2o.distill import distil

    out = {}
    for teacher, grammar_file, kwargs, inside in TEACHERS:
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            result = distil(teacher, grammar_file, out=Path(tmp) / "out", teacher_kwargs=kwargs)
            seconds = time.perf_counter() - started
        data = result.data
        out[_key(teacher, grammar_file, kwargs)] = {
            "formula": data["formula"], "r2": data["r2"], "heldout_error": data["heldout_error"],
            "exact": data["exact"], "seconds": round(seconds, 1), "missing_operand": data.get("missing_operand")}
        print(teacher, out[_key(teacher, grammar_file, kwargs)], flush=True)
    return out


def run_gplearn(indices, cache: dict) -> None:
    """gplearn on the teachers at ``indices`` (same recording as ``distil()``'s), into ``cache``."""
    from dsr_l2o.distill import record
    from dsr_l2o.distill.teacher import teacher_spec
    from dsr_l2o.grammar import load_grammar
    from dsr_l2o.search.relaxation import RelaxedRule
    from dsr_l2o.tasks import get_family

    for i in indices:
        teacher, grammar_file, kwargs, _ = TEACHERS[i]
        grammar = load_grammar(grammar_file)
        names = RelaxedRule(grammar, depth=1).operand_names
        trace = record(teacher_spec(teacher, grammar, kwargs), get_family("mixed"), grammar, names)
        fit, held = trace.split(2)
        program, r2, error, exact, seconds = gplearn_fit(fit, held, names)
        cache[_key(teacher, grammar_file, kwargs)] = {"program": program, "r2": r2, "heldout_error": error,
                                                      "exact": bool(exact), "seconds": round(seconds)}
        print(teacher, cache[_key(teacher, grammar_file, kwargs)], flush=True)
        GPLEARN_CACHE.write_text(json.dumps(cache, indent=1) + "\n", encoding="utf-8")


def table(ours: dict, gp: dict) -> str:
    import torch

    from machine import cpu_name

    rows, ours_exact, gp_exact, gp_run, in_grammar = [], 0, 0, 0, 0
    for teacher, grammar_file, kwargs, inside in TEACHERS:
        key = _key(teacher, grammar_file, kwargs)
        data, g = ours[key], gp.get(key)
        label = LABELS.get(teacher, teacher) + (f" {kwargs}" if kwargs else "")
        suggestion = data.get("missing_operand")
        extra = (f"add `{suggestion['line']}`: `{suggestion['formula']}` "
                 f"({'exact' if suggestion['exact'] else 'R² %.6f' % suggestion['r2']})") if suggestion else ""
        in_grammar += inside
        ours_exact += bool(data["exact"]) and inside
        if g is not None:
            gp_run += inside
            gp_exact += g["exact"] and inside
            program = g["program"] if len(g["program"]) <= 80 else g["program"][:60] + f"... ({len(g['program'])} chars)"
            gp_cells = f" `{program}` | {g['r2']:.4f} | {'yes' if g['exact'] else 'no'} | {g['seconds']} |"
        else:
            gp_cells = " not run | | | |"
        rows.append(f"| {label} | {'lion' if grammar_file else 'default'} | `{data['formula']}` | {data['r2']:.6f} | "
                    f"{data['heldout_error']:.1e} | {'**yes**' if data['exact'] else 'no'} | {data['seconds']:.1f} | "
                    f"{extra} |" + gp_cells)
    summary = (f"In-grammar teachers recovered exactly: **{ours_exact} of {in_grammar}** by `dsr-l2o distil`; "
               f"gplearn, run on {gp_run} of them: {gp_exact} of {gp_run}.")
    lines = ["# Distilling teachers", "",
             "Written by `python benchmarks/distill_teachers.py`; do not edit by hand.", "",
             f"{dt.date.today().isoformat()}, {cpu_name()}, torch {torch.__version__}, one thread, a machine shared "
             "with other jobs (load about 6 on 2 cores). `dsr-l2o distil` defaults: 8 tasks of the `mixed` family "
             "(the last 2 held out), 100 steps at lr 0.01, formulas up to 5 nodes and composites of them. *Exact*: "
             "the held-out relative error of the fitted multiple is at most 1e-6. Seconds: the whole `distil()` "
             "call (recording, search and, when nothing is exact, the extra-operand trials).", "",
             "gplearn: `SymbolicRegressor(population_size=2000, generations=30, parsimony_coefficient=0.001, "
             f"metric='mse')` with add, sub, mul, div, sqrt, log, abs, neg, sign, exp, on {GPLEARN_ROWS} rows of "
             "the same fit episodes (the same recording), judged on the same held-out rows by the same criterion; "
             "it takes minutes per teacher here, so it ran on the teachers marked. PySR needs Julia, which cannot "
             "be installed offline here.", "", summary, "",
             "| teacher | grammar | formula | R² | held-out error | exact | s | suggestion | gplearn program "
             "| gplearn R² | exact | s |",
             "|---|---|---|---:|---:|---|---:|---|---|---:|---|---:|", *rows, ""]
    return "\n".join(lines)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--gplearn", type=int, nargs="*", default=None,
                        help="indices into TEACHERS to run gplearn on (cached); ours is then read from the json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gp = json.loads(GPLEARN_CACHE.read_text()) if GPLEARN_CACHE.is_file() else {}
    if args.gplearn is not None:
        run_gplearn(args.gplearn, gp)
        ours = json.loads(OURS.read_text())
    else:
        ours = run_ours()
        OURS.write_text(json.dumps(ours, indent=1) + "\n", encoding="utf-8")
    Path(__file__).with_suffix(".md").write_text(table(ours, gp), encoding="utf-8")


if __name__ == "__main__":
    main()
