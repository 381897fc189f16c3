"""``distil()``: teacher -> recorded updates -> fitted formula -> result directory."""

from __future__ import annotations

import datetime as _dt
import math
from pathlib import Path
from typing import Callable

import torch

from .. import __version__
from ..atomic import write_json, write_text
from ..errors import ConfigError, DsrError, FormulaError
from ..grammar import default_grammar_path, load_grammar
from ..result import SearchResult, load_result

Log = Callable[[str], None]


def teacher_spec(teacher: str, grammar):
    """A baseline name (``adam``, ``momentum``, ...) or a formula in ``grammar``."""
    from ..evaluation import BASELINE_NAMES, formula_spec, get_baseline

    if teacher.strip().lower() in BASELINE_NAMES:
        return get_baseline(teacher)
    try:
        return formula_spec(teacher, grammar, name="teacher")
    except FormulaError as err:
        raise ConfigError(f"teacher {teacher!r} is neither a baseline ({', '.join(BASELINE_NAMES)}) "
                          f"nor a formula of grammar {grammar.name!r}: {err}") from None


def distil(teacher: str, grammar: str | Path | None = None, out: str | Path = "runs/distil", tasks: str = "mixed",
           episodes: int = 8, steps: int = 100, lr: float = 1e-2, iterations: int = 300, depth: int = 2,
           top_k: int = 8, seed: int = 0, log: Log | None = None) -> SearchResult:
    """Distil ``teacher`` into a formula of ``grammar`` (default ``grammars/default.yaml``).

    The teacher runs at step size ``lr`` on ``episodes`` tasks of the family ``tasks``; the
    result's ``lr`` is ``lr * alpha``, so the formula steps like the teacher. Writes
    ``out/result.json`` and ``out/grammar.yaml``; returns :func:`~dsr_l2o.load_result` of ``out``.
    """
    from ..search.relaxation import RelaxedRule
    from ..tasks import get_family
    from .fit import fit
    from .record import record

    log = log or (lambda text: None)
    settings = {"teacher": teacher, "tasks": tasks, "episodes": episodes, "steps": steps, "lr": lr,
                "iterations": iterations, "depth": depth, "top_k": top_k, "seed": seed}
    _check(settings)
    out = Path(out)
    if (out / "result.json").exists():
        raise ConfigError(f"{out} already holds a result; choose another --out or remove it")
    grammar_obj = load_grammar(Path(grammar) if grammar else default_grammar_path())
    spec = teacher_spec(teacher, grammar_obj)
    family = get_family(tasks)
    names = RelaxedRule(grammar_obj, depth=1).operand_names
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        log(f"recording {teacher} on {episodes} tasks of {tasks}, {steps} steps each")
        trace = record(spec, family, grammar_obj, names, episodes=episodes, steps=steps, lr=lr, seed=seed)
        log(f"fitting {len(trace)} samples")
        candidates = fit(trace, grammar_obj, depth=depth, iterations=iterations, top_k=top_k, seed=seed, log=log)
    finally:
        torch.set_num_threads(threads)
    if not candidates:
        raise DsrError("no candidate formula fitted the teacher with finite values; "
                       "try a larger --iterations or --depth, or another grammar")
    best = candidates[0]
    from ..notation import latex

    result = {
        "formula": best.formula.text, "lr": float(f"{lr * best.alpha:.4g}") if best.alpha > 0 else None,
        "latex": latex(grammar_obj, best.formula.sympy), "complexity": best.complexity,
        "route": "distil", "teacher": teacher, "r2": best.r2, "alpha": best.alpha,
        "candidates": [c.to_json() for c in candidates],
        "metrics": {"samples": len(trace), "episodes": trace.episodes},
        "grammar": grammar_obj.name, "config": settings, "dsr_l2o_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "grammar.yaml", grammar_obj.source_text)
    write_json(out / "result.json", result)
    return load_result(out)


def _check(settings: dict) -> None:
    for key in ("episodes", "steps", "iterations", "depth", "top_k"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    lr = settings["lr"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr must be a positive number, not {lr!r}")
    if settings["depth"] > 4:
        raise ConfigError(f"depth {settings['depth']} is too deep to fit; use 1 to 4")
