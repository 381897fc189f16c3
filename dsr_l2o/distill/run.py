"""``distil()``: teacher -> recorded updates -> fitted formula (exact where one exists) -> result directory."""

from __future__ import annotations

import datetime as _dt
import math
import time
from pathlib import Path
from typing import Callable

from .. import __version__
from ..errors import ConfigError, DsrError
from ..grammar import default_grammar_path, load_grammar
from ..result import Candidate, DistillResult, save_result
from ..threads import single_thread
from .teacher import teacher_spec

Log = Callable[[str], None]
METHODS = ("enumerate", "relaxation")
FIT_THRESHOLD = 0.999
"""Below this R^2 the result says that no formula of the grammar fits."""

__all__ = ["distil", "teacher_spec", "METHODS"]


def distil(teacher: str, grammar: str | Path | None = None, out: str | Path = "runs/distil", tasks: str = "mixed",
           episodes: int = 8, steps: int = 100, lr: float = 1e-2, iterations: int = 300, depth: int = 2,
           top_k: int = 8, seed: int = 0, log: Log | None = None, method: str = "enumerate", max_size: int = 5,
           heldout: int = 2, suggest: bool = True, teacher_kwargs: dict | None = None,
           on_episode: Callable[[int, int], None] | None = None) -> DistillResult:
    """Distil ``teacher`` (see :func:`~.teacher.teacher_spec`) into a formula of ``grammar``.

    The teacher runs at step size ``lr`` on ``episodes`` tasks of the family ``tasks``; the last
    ``heldout`` episodes (at most all but one) are held out to verify exactness. ``method`` ``enumerate`` searches every
    formula up to ``max_size`` nodes and composites of them (:mod:`.exact`); ``relaxation``
    regresses the soft relaxation of ``depth`` (``iterations`` steps) and reads off ``top_k``
    formulas (:mod:`.fit`). When no formula is exact and ``suggest`` is on, candidate extra
    operands are tried (:mod:`.missing`). The result's ``lr`` is ``lr * alpha``, so the formula
    steps like the teacher. Writes ``out/result.json`` and ``out/grammar.yaml``; returns
    :class:`~dsr_l2o.result.DistillResult` written there.
    """
    from ..search.relaxation import RelaxedRule
    from ..tasks import get_family
    from . import exact, missing
    from .record import record

    log = log or (lambda text: None)
    settings = {"teacher": teacher, "teacher_kwargs": teacher_kwargs or {}, "tasks": tasks, "episodes": episodes,
                "steps": steps, "lr": lr, "method": method, "max_size": max_size, "heldout": heldout,
                "iterations": iterations, "depth": depth, "top_k": top_k, "seed": seed}
    _check(settings)
    out = Path(out)
    if (out / "result.json").exists():
        raise ConfigError(f"{out} already holds a result; choose another --out or remove it")
    grammar_obj = load_grammar(Path(grammar) if grammar else default_grammar_path())
    spec = teacher_spec(teacher, grammar_obj, teacher_kwargs)
    family = get_family(tasks)
    names = RelaxedRule(grammar_obj, depth=1).operand_names
    extra = missing.candidate_operands(grammar_obj) if suggest else []
    recorded = missing.with_operands(grammar_obj, extra) if extra else grammar_obj
    started = time.perf_counter()
    suggestion = None
    with single_thread():
        log(f"recording {spec.name} on {episodes} tasks of {tasks}, {steps} steps each")
        trace = record(spec, family, recorded, names + [o.name for o in extra], episodes=episodes, steps=steps,
                       lr=lr, seed=seed, on_episode=on_episode)
        fit_rows, held_rows = trace.split(min(heldout, trace.episodes - 1))
        log(f"fitting {len(fit_rows)} samples, verifying on {len(held_rows) if held_rows else 0} held-out ones")
        if method == "enumerate":
            candidates = exact.search(fit_rows, held_rows, grammar_obj, names, max_size=max_size, seed=seed, log=log)
        else:
            candidates = _relaxation(fit_rows, held_rows, grammar_obj, depth, iterations, top_k, seed, log)
        if candidates and not candidates[0].exact and extra:
            log("no formula is exact; trying extra operands")
            suggestion = missing.suggest(fit_rows, held_rows, grammar_obj, names, extra, seed=seed, log=log,
                                         baseline_r2=max(c.r2 for c in candidates))
    seconds = time.perf_counter() - started
    if not candidates:
        raise DsrError("no candidate formula fitted the teacher with finite values; "
                       "try a larger --max-size, another --method or another grammar")
    best = candidates[0]
    result = DistillResult(
        best.formula, float(f"{lr * best.alpha:.4g}") if best.alpha > 0 else None,
        candidates=[Candidate.from_json(c.to_json()) for c in candidates[:20]],
        metrics={"samples": len(trace), "fit_samples": len(fit_rows),
                 "heldout_samples": len(held_rows) if held_rows else 0, "episodes": trace.episodes,
                 "distil_seconds": round(seconds, 2)},
        config=settings, created=_dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        dsr_l2o_version=__version__, teacher=spec.name, r2=best.r2, alpha=best.alpha, exact=best.exact,
        heldout_error=best.heldout_error if math.isfinite(best.heldout_error) else None,
        fits=best.r2 >= FIT_THRESHOLD, note=_note(best, suggestion),
        missing_operand=suggestion.to_json() if suggestion else None)
    out.mkdir(parents=True, exist_ok=True)
    return save_result(result, out)


def _note(best, suggestion) -> str:
    """One sentence on how well the formula fits, and what to add to the grammar if it does not."""
    if best.exact:
        return "exact: steps along a positive multiple of the teacher's update on held-out tasks (error <= 1e-6)"
    fit = "no formula of the grammar fits" if best.r2 < FIT_THRESHOLD else "close but not exact"
    text = f"{fit} (R^2 {best.r2:.6f}, held-out error {best.heldout_error:.2g})"
    if suggestion is None:
        text += "; no candidate extra operand (moving averages of g and g**2 with other betas) makes it fit better"
    else:
        verdict = "exact" if suggestion.exact else f"R^2 {suggestion.r2:.6f}"
        text += f"; the grammar may be missing an operand: add `{suggestion.line}` for `{suggestion.formula}` ({verdict})"
    return text


def _relaxation(fit_rows, held_rows, grammar, depth, iterations, top_k, seed, log):
    """The relaxation route (:mod:`.fit`), its formulas verified like the enumeration's."""
    from . import exact
    from .fit import fit
    from .stages import Proposal

    out = []
    for c in fit(fit_rows, grammar, depth=depth, iterations=iterations, top_k=top_k, seed=seed, log=log):
        candidate = exact.refit(Proposal(c.formula.expr, c.r2, "relaxation", c.complexity), fit_rows, held_rows,
                                grammar)
        if candidate is not None:
            out.append(candidate)
    return exact.rank(out)


def _check(settings: dict) -> None:
    for key in ("episodes", "steps", "iterations", "depth", "top_k", "max_size"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{key} must be a positive integer, not {value!r}")
    heldout = settings["heldout"]
    if isinstance(heldout, bool) or not isinstance(heldout, int) or heldout < 0:
        raise ConfigError(f"heldout must be a non-negative integer, not {heldout!r}")
    lr = settings["lr"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
        raise ConfigError(f"lr must be a positive number, not {lr!r}")
    if settings["depth"] > 4:
        raise ConfigError(f"depth {settings['depth']} is too deep to fit; use 1 to 4")
    if settings["max_size"] > 6:
        raise ConfigError(f"max_size {settings['max_size']} is too large to enumerate; use 1 to 6")
    if settings["method"] not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, not {settings['method']!r}")
