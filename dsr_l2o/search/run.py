"""``search()``: grammar -> relaxation -> meta-training -> discrete candidates -> one formula.

Writes the result directory described in ``docs/search.md`` (config, grammar copy, checkpoint,
``metrics.jsonl``, plots, ``result.json``). Progress is reported through ``report(event, data)``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
from pathlib import Path
from typing import Callable

import torch
import yaml

from .. import __version__
from ..atomic import clean_temp_files, write_text, write_torch
from ..errors import ConfigError, DsrError, SearchInterrupted
from ..grammar import Grammar, default_grammar_path, grammar_from_text, load_grammar
from .checkpoint import interrupted_message, load_checkpoint, resumed_grammar_text, resumed_settings, truncate_metrics
from ..threads import single_thread
from ..workers import resolve_workers
from . import distributed
from .config import SearchConfig, load_config, requested_setting
from .discretize import argmax_choice, set_choice, to_expr, top_k
from .meta_train import MetaTrainer, run_meta_training
from .relaxation import RelaxedRule
from ..result import SearchResult, Validation, save_result

Report = Callable[[str, object], None]
"""``report(event, data)``: ``"phase"`` (a line of text), ``"start"`` (the settings), ``"meta_step"``
(its metrics record), ``"tasks"`` ((tasks tuned, tasks) in a scoring round), ``"done"`` (the result)."""


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; an explicit ``cuda`` without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("device cuda was asked for but no CUDA GPU is available; use --device cpu or auto")
    return torch.device(name)


def search(grammar: str | Path | Grammar | None = None, config: str | Path | None = None, out: str | Path = "runs/search",
           resume: bool = False, report: Report | None = None, **overrides) -> SearchResult:
    """Run a whole search and return its result (also written to ``out``).

    ``grammar`` is a grammar YAML path, YAML text or a :class:`~dsr_l2o.grammar.Grammar` (default
    ``grammars/default.yaml``); ``config`` a YAML file
    of :class:`SearchConfig` settings; ``overrides`` set individual settings (``meta_steps=50``).
    ``resume=True`` continues from ``out/checkpoint.pt`` and ends with the same result as an
    uninterrupted run with the same settings. Under ``torchrun`` (or ``dsr-l2o search --nproc``)
    every process meta-trains its share and only process 0 writes, selects and returns the
    result; the others return ``None`` (docs/scaling.md).
    """
    writer = distributed.env_rank() == 0
    report = report if report is not None and writer else (lambda event, data: None)
    out = Path(out)
    given = load_grammar(grammar) if grammar is not None else None  # a path, YAML text or a Grammar
    if given is not None:
        # config.yaml names the file as it was given; grammar.yaml holds the text either way
        overrides["grammar"] = str(grammar) if given.path and isinstance(grammar, (str, Path)) else given.path or "<text>"
    settings = load_config(config, **overrides)
    if writer:
        clean_temp_files(out)
    if resume:
        requested_grammar = requested_setting("grammar", config, **overrides)
        settings = resumed_settings(out, config, overrides)
    elif (out / "result.json").exists() or (out / "checkpoint.pt").exists():
        raise ConfigError(f"{out} already holds a search; pass --resume to continue it or choose another --out")
    grammar_path = Path(settings.grammar) if settings.grammar else default_grammar_path()
    if resume:  # the run directory's copy is the source of truth
        requested = given if given is not None else requested_grammar
        grammar_obj = grammar_from_text(resumed_grammar_text(out, requested), grammar_path)
    else:
        grammar_obj = given if given is not None else load_grammar(grammar_path)
    from ..tasks import VALIDATION_TASKS, get_family, get_task

    family = get_family(settings.tasks)
    validation = [get_task(n) for n in (settings.validation_tasks or VALIDATION_TASKS)]
    device = distributed.local_device(resolve_device(settings.device))
    out.mkdir(parents=True, exist_ok=True)
    if not resume and writer:
        write_text(out / "config.yaml", yaml.safe_dump(settings.to_dict(), sort_keys=False))
        write_text(out / "grammar.yaml", grammar_obj.source_text)

    try:
        with single_thread(device.type == "cpu"), distributed.session(device, settings.dist_timeout):
            return _search(settings, grammar_obj, family, validation, device, out, resume, report)
    except KeyboardInterrupt:
        raise SearchInterrupted(interrupted_message(out)) from None


def _search(settings, grammar, family, validation, device, out, resume, report) -> SearchResult:
    torch.manual_seed(settings.seed)
    rule = RelaxedRule(grammar, depth=settings.depth, init_lr=settings.init_lr,
                       init_bias=settings.init_bias).to(device)
    if settings.descent_prior and not resume:
        from .prior import apply_descent_prior, terminal_cosines

        cosines = terminal_cosines(rule, family, settings.seed)
        apply_descent_prior(rule, cosines, settings.descent_prior)
        report("phase", "descent prior (cosine with the gradient): " +
               ", ".join(f"{t} {c:+.2f}" for t, c in zip(rule.terminals, cosines)))
    trainer = MetaTrainer(rule, family, settings, device)
    metrics_path, writer = out / "metrics.jsonl", distributed.is_writer()
    if resume:
        load_checkpoint(out / "checkpoint.pt", trainer, device)
        if writer:
            truncate_metrics(metrics_path, trainer.state.meta_step)
        report("phase", f"resumed at meta-step {trainer.state.meta_step}")
    elif metrics_path.exists() and writer:
        metrics_path.unlink()
    distributed.align(trainer)
    report("start", settings)
    with open(metrics_path if writer else os.devnull, "a", encoding="utf-8") as log:

        def on_step(record):
            record["formula"] = to_expr_text(rule)
            record["weights"] = _weights(rule, trainer.temperature(record["step"]))
            log.write(json.dumps(record) + "\n")
            log.flush()
            report("meta_step", record)

        def on_checkpoint():
            if writer:
                write_torch(out / "checkpoint.pt", trainer.state_dict())

        run_meta_training(trainer, on_step, on_checkpoint)

    hall = getattr(trainer.estimator, "hall", None)
    if hall is None:
        report("phase", "meta-training done; refitting constants of the argmax rule")
        _refit(rule, argmax_choice(rule), family, settings, device, report)  # not checkpointed: a resume redoes it
    if not writer:
        return None  # the other processes' part ends with meta-training
    result = _select(rule, grammar, validation, settings, device, report, hall)
    meta = trainer.state
    result.metrics = {"meta_steps": meta.meta_step, "episodes": meta.episode, "skipped_steps": meta.skipped,
                      "seconds": round(meta.seconds, 1), "final_meta_loss": _last_meta_loss(metrics_path),
                      "meta_learned_lr": float(rule.lr().detach())}
    result.created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    result.dsr_l2o_version, result.config, result.device = __version__, settings.to_dict(), str(device)
    from ..naming import name_rule

    naming = name_rule(result.formula)
    result.naming = naming.to_json()
    report("phase", f"the formula is {naming.text()}")
    from .plots import plot_metrics

    plot_metrics(metrics_path, out / "plots", {f"{slot.kind}{slot.index}": slot.labels for slot, _ in rule.slots()})
    save_result(result, out)
    report("done", result)
    return result


def to_expr_text(rule: RelaxedRule) -> str:
    from ..expr import to_text

    return to_text(to_expr(rule, argmax_choice(rule), scale_digits=3))


def _weights(rule: RelaxedRule, temperature: float) -> dict[str, list[float]]:
    out = {}
    for slot, logits in rule.slots():
        probs = torch.softmax(logits.detach() / max(temperature, 1e-3), dim=-1)
        out[f"{slot.kind}{slot.index}"] = [round(float(p), 4) for p in probs]
    return out


REFIT_EPISODES = 10_000
"""Episode-seed offset of the refit: its tasks are unseen by the main meta-training."""


def _refit(rule, choice, family, settings, device, report) -> None:
    """Meta-train only the leaf scales and the step size of the fixed argmax rule (``T = 0``).

    The refit runs on a copy whose logits are set one-hot; only the refitted scales and step
    size are copied back, so the learned distribution stays intact for the top-k read-off.
    """
    import copy

    steps = max(settings.meta_steps // 10, settings.truncations)
    steps -= steps % settings.truncations
    fixed = copy.deepcopy(rule)
    set_choice(fixed, choice)
    refit_settings = SearchConfig(**{**settings.to_dict(), "meta_steps": steps, "entropy_weight": 0.0})
    trainer = MetaTrainer(fixed, family, refit_settings, device, parameters=[fixed.leaf_log_scale, fixed.log_lr],
                          temperature=lambda step: 0.0, episode_offset=REFIT_EPISODES)
    losses = [r["meta_loss"] for r in (trainer.step() for _ in range(steps)) if r["meta_loss"] is not None]
    with torch.no_grad():
        rule.leaf_log_scale.copy_(fixed.leaf_log_scale)
        rule.log_lr.copy_(fixed.log_lr)
    if losses:
        report("phase", f"refit: {steps} meta-steps, mean meta-loss {sum(losses) / len(losses):.4f}")


HALL_KEPT = 8
"""Best samples of the population gradient's hall of fame that join the candidates."""


def _select(rule, grammar, validation, settings, device, report, hall=None) -> SearchResult:
    from ..evaluation import EvalProtocol
    from ..formula import Formula
    from .guards import probe_operands
    from .select import Scorer, build_candidates, decide, reject_equivalents, snap_constants

    simplify = _simplifier()
    discretisations = top_k(rule, settings.top_k)
    raw = Formula(discretisations[0].expr, grammar)
    probes = probe_operands(raw, validation[:2])
    candidates = build_candidates(discretisations, grammar, probes, simplify)
    if hall is not None:
        candidates += _hall_candidates(hall, grammar, probes, simplify, {c.formula.text for c in candidates})
    reject_equivalents(candidates)
    grid = {"lrs": tuple(settings.eval_lrs)} if settings.eval_lrs else {}
    protocol = EvalProtocol(**grid, seeds=tuple(settings.eval_seeds), steps=settings.eval_steps)
    log = lambda text: report("phase", text)  # noqa: E731
    log(f"scoring {len(candidates)} candidates on {len(validation)} validation tasks (tuned Adam = 1.0)")
    workers = resolve_workers(settings.workers, device, distributed.world())
    scorer = Scorer(validation, protocol, log, workers, progress=_task_progress(report))
    usable = _score_all(candidates, scorer, log)
    if not usable:
        _ = scorer.reference  # a validation task that cannot be trained is the error to report
        raise DsrError("every candidate formula was rejected or diverged on the validation tasks; "
                       "run longer (--meta-steps) or change the grammar")
    best = min(usable, key=lambda c: c.ratio)
    grown_info = None
    if settings.grow:
        grown, grown_info = _grow(usable, settings, device, probes, simplify, log)
        known = {c.formula.text for c in candidates}
        grown = [c for c in grown if c.formula.text not in known]
        candidates += grown
        reject_equivalents(usable + grown)
        usable += _score_all(grown, scorer, log)
        best = min(usable, key=lambda c: c.ratio)
    best, scorer = decide(usable, scorer, log, _tie_evidence(settings, protocol, log, hall, workers,
                                                             _task_progress(report)))
    best = snap_constants(best, scorer, simplify, log)
    validation_record = Validation(
        [t.name for t in validation], protocol.to_json(), _finite(best.ratio), best.record().scores,
        {k: _finite(v) for k, v in scorer.reference.items()}, dict(best.lrs))
    return SearchResult(best.formula, best.lr, candidates=[c.record() for c in candidates], raw_formula=best.raw_text,
                        relaxation_argmax=raw.text, stage=best.stage, grow=grown_info, validation=validation_record)


TIE_EPISODE_OFFSET = 30_000
"""Tie tasks are the training family's draws at these episodes of seed 0, whatever the search's
seed (the same tasks in every run, and not the tasks meta-training or the grow stage met)."""


def _task_progress(report):
    """Report each task a scoring round has tuned: ``report("tasks", (done, total))``."""
    return lambda done, total: report("tasks", (done, total))


def _tie_evidence(settings, protocol, log, hall, workers: int = 1, progress=None):
    """What decides a tie between equally simple finalists: minus their mean log(score / tuned
    Adam's) on ``settings.tie_tasks`` tasks drawn from the training family, under the validation
    protocol with the tie seeds (scored only when a tie needs them); with ``tie_tasks: 0``,
    meta-training's hall of fame, else nothing."""
    if not settings.tie_tasks:
        return None if hall is None else _hall_evidence(hall)
    from dataclasses import replace

    from ..tasks import get_family
    from .meta_train import episode_seed
    from .select import TIE_SEEDS, Candidate, Scorer

    def evidence(candidates):
        family = get_family(settings.tasks)
        drawn = [family.sample(episode_seed(0, TIE_EPISODE_OFFSET + i)) for i in range(settings.tie_tasks)]
        tasks = list({t.name: t for t in drawn}.values())
        log(f"deciding a tie on {len(tasks)} tasks drawn from {settings.tasks}")
        scorer = Scorer(tasks, replace(protocol, seeds=TIE_SEEDS), log, workers, progress=progress)
        scored = scorer.score_many([Candidate(c.formula, c.raw_text, c.log_prob) for c in candidates])
        means = [sum(c.seed_logs) / len(c.seed_logs) for c in scored]
        return [-m if math.isfinite(m) else None for m in means]

    return evidence


def _hall_evidence(hall):
    """A candidate's mean advantage in meta-training (its sampled text, else its simplified one)."""
    def one(candidate):
        found = hall.advantage(candidate.raw_text)
        return found if found is not None else hall.advantage(candidate.formula.text)

    def evidence(candidates):
        return [one(c) for c in candidates]

    return evidence


def _hall_candidates(hall, grammar, probes, simplify, known: set[str]) -> list:
    """The hall of fame's best samples (mean advantage over the tasks each met) as candidates."""
    from ..formula import parse_formula
    from .guards import degenerate_reason
    from .select import Candidate, unit_scaled

    out = []
    for text, reward, count in hall.best(HALL_KEPT, min_count=2) or hall.best(HALL_KEPT):
        formula = unit_scaled(simplify(parse_formula(text, grammar)), simplify)
        if formula.text not in known:
            known.add(formula.text)
            out.append(Candidate(formula, text, None, degenerate_reason(formula, probes)))
    return out


def _score_all(candidates, scorer, log) -> list:
    """Score every candidate that is not rejected (one batch); return those with a finite ratio."""
    for cand in candidates:
        if cand.rejected:
            log(f"rejected {cand.formula.text}: {cand.rejected}")
    for cand in scorer.score_many([c for c in candidates if not c.rejected]):
        log(f"candidate {cand.formula.text}: ratio to Adam {cand.ratio:.4g}")
    return [c for c in candidates if not c.rejected and math.isfinite(c.ratio)]


GROW_RANKING_KEPT = 10


def _grow(usable, settings, device, probes, simplify, log):
    """The grow stage (:mod:`dsr_l2o.search.grow`) on the scored candidates: the ``grow_keep``
    best corrections of the one the grow tasks rank first, and a summary for ``result.json``."""
    from ..tasks import get_family
    from .grow import grow
    from .guards import degenerate_reason
    from .meta_train import episode_seed
    from .select import Candidate

    family = get_family(settings.grow_tasks)
    tasks = [family.sample(episode_seed(settings.seed, GROW_EPISODE_OFFSET + i)) for i in range(settings.grow_episodes)]
    ranking = grow([c.formula for c in usable], tasks, settings.grow_steps, settings.grow_constants,
                   settings.seed, device, log)
    base = min((g for g in ranking if g.constant == 0.0), key=lambda g: g.score)
    base_score = base.score
    kept = [g for g in ranking if g.constant != 0.0 and g.score < base_score][:settings.grow_keep]
    for g in kept:
        log(f"grow: {g.formula.text}: {g.score:.3f} on {settings.grow_tasks} (base {base_score:.3f})")
    if not kept:
        log(f"grow: no correction of {base.formula.text} improves it on {settings.grow_tasks}")
    candidates = []
    for g in kept:
        formula = simplify(g.formula)
        candidates.append(Candidate(formula, g.formula.text, None, degenerate_reason(formula, probes), stage="grow"))
    info = {"base": base.formula.text, "tasks": settings.grow_tasks, "episodes": settings.grow_episodes,
            "terms": sum(g.constant != 0.0 for g in ranking), "base_score": base_score,
            "ranking": [g.to_json() for g in ranking[:GROW_RANKING_KEPT]]}
    return candidates, info


GROW_EPISODE_OFFSET = 20_000  # grow tasks are not the meta-training episodes' tasks


def _finite(x):
    return x if x is not None and math.isfinite(x) else None


def _simplifier():
    try:
        from ..simplify import simplify
    except ImportError:  # the simplifier is optional for the search itself
        return lambda formula: formula
    return simplify


def _last_meta_loss(path: Path):
    last = None
    for line in path.read_text(encoding="utf-8").splitlines():
        value = json.loads(line).get("meta_loss")
        if value is not None:
            last = value
    return last


__all__ = ["search", "resolve_device"]
