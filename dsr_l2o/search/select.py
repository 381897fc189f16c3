"""From a trained relaxation to one formula: top-k discretisations, guards, fair scoring, snapping."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Callable

from .. import expr as ex
from ..evaluation.ratios import FLOOR, geometric_mean_ratio
from ..formula import Formula
from ..result import Candidate as Record
from ..workers import map_jobs
from .guards import degenerate_reason

SIMPLE_CONSTANTS = (0.1, 0.5, 0.9, 0.99, 1.0, 2.0, math.e, 10.0)
SNAP_TOLERANCE = 0.01


@dataclass
class Candidate:
    """One discrete rule with its validation scores (``ratio``: geometric mean of score / Adam's)."""

    formula: Formula
    raw_text: str
    log_prob: float | None
    rejected: str | None = None
    stage: str = "relaxation"  # or "grow"
    ratio: float = math.inf
    lr: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    lrs: dict[str, float | None] = field(default_factory=dict)
    seed_logs: list[float] = field(default_factory=list)
    """Per seed: the mean over tasks of log(score / Adam's), at each task's best lr."""

    @property
    def spread(self) -> float:
        """Seed-to-seed standard deviation of :attr:`seed_logs` (0 with one seed)."""
        n = len(self.seed_logs)
        if n < 2 or not all(map(math.isfinite, self.seed_logs)):
            return 0.0
        mean = sum(self.seed_logs) / n
        return math.sqrt(sum((x - mean) ** 2 for x in self.seed_logs) / (n - 1))

    def record(self) -> Record:
        """The typed record of this candidate for ``result.json``."""
        return Record(self.formula.text, self.raw_text, self.stage, self.log_prob, self.rejected, _finite(self.ratio),
                      self.lr, {k: _finite(v) for k, v in self.scores.items()}, dict(self.lrs), self.formula.size)

    def to_json(self) -> dict:
        return self.record().to_json()


def _finite(value):
    return value if value is not None and math.isfinite(value) else None


class Scorer:
    """Fair-protocol scores of formulas on validation tasks, as ratios to tuned Adam.

    Each task is tuned whole in one process; with ``workers`` > 1 the tasks are shared among
    forked processes (:func:`~dsr_l2o.workers.map_jobs`), with the same values. Tuned Adam (the
    :attr:`reference`) joins the first formulas scored on each task, in the same job. Every run's
    score is kept (:attr:`memo`, per task), and a scorer made by :meth:`with_seeds` trains only
    the seeds it adds."""

    def __init__(self, tasks, protocol, log: Callable[[str], None], workers: int = 1,
                 memo: dict[str, dict] | None = None, progress: Callable[[int, int], None] | None = None):
        from ..engine import tune_batched

        self.tasks, self.protocol, self.log, self.workers, self._tune = tasks, protocol, log, workers, tune_batched
        self.memo = memo if memo is not None else {t.name: {} for t in tasks}
        self.progress = progress
        """Called with (tasks done, tasks) as each task of a round is tuned."""
        self._reference: dict[str, float] | None = None

    def with_seeds(self, seeds: tuple[int, ...]) -> "Scorer":
        """A scorer of the same tasks with these seeds, which reuses this one's runs."""
        from dataclasses import replace

        return Scorer(self.tasks, replace(self.protocol, seeds=seeds), self.log, self.workers, self.memo,
                      self.progress)

    @property
    def reference(self) -> dict[str, float]:
        """Tuned Adam's score on each task (by name), tuned now if no formula was scored yet (so
        a task that cannot be trained raises its error here)."""
        if self._reference is None:
            self._tune_all([])
        return self._reference

    def _tune_all(self, specs: list) -> list[list]:
        """Per task, the tune results of ``specs``; tuned Adam is tuned along with them (its own
        batch, so its values are those of a run alone) until the reference is known."""
        from ..evaluation import get_baseline

        adam = [] if self._reference is not None else [get_baseline("adam")]

        def job(task):
            memo = self.memo[task.name]
            return self._tune(adam + specs, task, self.protocol, memo=memo), memo

        done = []

        def tick(_):
            done.append(1)
            self.progress(len(done), len(self.tasks))

        tuned = []
        jobs = map_jobs(job, self.tasks, self.workers, on_done=tick if self.progress else None)
        for task, (results, memo) in zip(self.tasks, jobs):
            self.memo[task.name] = memo  # a worker filled its own copy
            tuned.append(results)
        if adam:
            self._reference = {t.name: results[0].best_score for t, results in zip(self.tasks, tuned)}
        return [results[len(adam):] for results in tuned]

    def score(self, candidate: Candidate) -> Candidate:
        """Score one candidate (see :meth:`score_many`)."""
        return self.score_many([candidate])[0]

    def score_many(self, candidates: list[Candidate]) -> list[Candidate]:
        """Tune every candidate on every task, all candidates of a task as one batched run (the
        tasks shared among the workers)."""
        from ..evaluation import formula_spec

        if not candidates:
            return []
        specs = [formula_spec(c.formula) for c in candidates]
        logs = [[] for _ in candidates]
        per_seed = [[[] for _ in self.protocol.seeds] for _ in candidates]
        tuned = self._tune_all(specs)
        reference = self.reference
        for task, results in zip(self.tasks, tuned):
            ref = max(reference[task.name], FLOOR)
            for k, (candidate, result) in enumerate(zip(candidates, results)):
                candidate.scores[task.name] = result.best_score
                candidate.lrs[task.name] = result.best_lr
                for s, score in enumerate(result.seed_scores.get(result.best_lr, [math.inf] * len(self.protocol.seeds))):
                    per_seed[k][s].append(_log_ratio(score, ref))
                if result.best_lr:
                    logs[k].append(math.log(result.best_lr))
        for candidate, seeds, lrs in zip(candidates, per_seed, logs):
            candidate.seed_logs = [sum(x) / len(x) for x in seeds]
            ratio = geometric_mean_ratio(candidate.scores.values(), (reference[t.name] for t in self.tasks))
            candidate.ratio = math.inf if ratio is None else ratio
            candidate.lr = float(f"{math.exp(sum(lrs) / len(lrs)):.3g}") if lrs else None
        return candidates


def _log_ratio(score: float, reference: float) -> float:
    return math.log(max(score, FLOOR) / reference) if math.isfinite(score) else math.inf


FINALIST_MARGIN = 1.25
"""Candidates within this factor of the best validation ratio are re-scored with more seeds."""
TIE_SEEDS = (0, 1, 2)
MORE_SEEDS = (0, 1, 2, 3, 4, 5)
"""Seeds of the second round, for candidates tied after :data:`TIE_SEEDS` by seed noise alone."""
SEPARATION = 2.0
"""A lead counts when it exceeds this many standard errors of the paired differences."""
NEGLIGIBLE = math.log(1.01)
"""A lead under 1% in geometric mean is a tie however consistent it is (rounding-sized)."""
SIGNIFICANCE = 0.05
"""Level of the one-sided signed-rank test of a lead across the validation tasks."""

Evidence = Callable[[list["Candidate"]], list["float | None"]]
"""What other tasks say of each candidate (higher is better; None: nothing), for ties."""


def decide(usable: list[Candidate], scorer: "Scorer", log: Callable[[str], None],
           evidence: Evidence | None = None) -> tuple[Candidate, "Scorer"]:
    """The chosen candidate, never by rounding and never by one task.

    The finalists (within :data:`FINALIST_MARGIN` of the best ratio) are re-scored with
    :data:`TIE_SEEDS`. A finalist is tied with the leader when their difference is within the
    seed-to-seed spread of their paired per-seed differences, or when the lead is under :data:`SEPARATION` standard errors of
    their per-task differences and not significant in a signed-rank test (the validation
    tasks are a sample of the tasks the rule will meet; a lead that one task makes is not a lead).
    Finalists tied by seed noise alone are re-scored with :data:`MORE_SEEDS`, where the seed
    criterion becomes :data:`SEPARATION` standard errors of the paired per-seed differences. Of
    those still tied the simplest formula wins; between equally simple ones, the one ``evidence``
    rates higher (more tasks than validation has: the search passes scores on tasks drawn from the
    training family), then the better mean. ``evidence`` is only called for such a tie. Returns
    the choice and the scorer its scores come from."""
    best = min(usable, key=lambda c: c.ratio)
    finalists = [c for c in usable if c.ratio <= best.ratio * FINALIST_MARGIN]
    if len(finalists) == 1:
        return best, scorer
    seed_rules = (lambda c, leader: within_seed_spread(_seed_differences(c, leader)),
                  lambda c, leader: _within_errors(_seed_differences(c, leader)))
    for seeds, seed_tied in zip((TIE_SEEDS, MORE_SEEDS), seed_rules):
        scorer, rescored = _rescore(finalists, scorer, seeds)
        leader = min(rescored, key=lambda c: _mean(c.seed_logs))
        by_task = {id(c): _task_tied(_task_differences(c, leader)) for c in rescored}
        by_seed = {id(c): seed_tied(c, leader) for c in rescored}
        finalists = [c for c in rescored if c is leader or by_task[id(c)] or by_seed[id(c)]]
        log(f"finalists with {len(scorer.protocol.seeds)} seeds: " + ", ".join(
            f"{c.formula.text} {c.ratio:.4g} (spread {c.spread:.3f})" for c in rescored)
            + f"; tied: {', '.join(c.formula.text for c in finalists)}")
        if all(c is leader or by_task[id(c)] for c in finalists):
            break
    smallest = min(c.formula.size for c in finalists)
    simplest = [c for c in finalists if c.formula.size == smallest]
    values = evidence(simplest) if evidence and len(simplest) > 1 else [None] * len(simplest)
    rated = {id(c): value for c, value in zip(simplest, values)}
    rating = {key: -math.inf if value is None else value for key, value in rated.items()}
    chosen = min(simplest, key=lambda c: (-rating[id(c)], _mean(c.seed_logs), c.formula.text))
    if rated[id(chosen)] is not None:
        log("tie evidence: " + ", ".join(f"{c.formula.text} {_shown(rated[id(c)])}" for c in simplest))
    log(f"chosen: {chosen.formula.text}")
    return chosen, scorer


def _shown(value: float | None) -> str:
    return "-" if value is None else f"{value:+.3f}"


def _rescore(finalists: list[Candidate], scorer: "Scorer", seeds: tuple[int, ...]) -> tuple["Scorer", list[Candidate]]:
    scorer = scorer.with_seeds(tuple(dict.fromkeys(tuple(scorer.protocol.seeds) + seeds)))
    return scorer, scorer.score_many([Candidate(c.formula, c.raw_text, c.log_prob, stage=c.stage) for c in finalists])


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _seed_differences(candidate: Candidate, leader: Candidate) -> list[float]:
    """Per seed, the candidate's mean log ratio to tuned Adam minus the leader's (paired: the same
    seeds and tasks)."""
    return [a - b for a, b in zip(candidate.seed_logs, leader.seed_logs)]


def within_seed_spread(diffs: list[float]) -> bool:
    """Whether a lead of ``mean(diffs)`` (paired per-seed differences) is within their
    seed-to-seed standard deviation, or under :data:`NEGLIGIBLE`."""
    if not diffs or not all(map(math.isfinite, diffs)):
        return False
    mean = _mean(diffs)
    return mean <= NEGLIGIBLE or (len(diffs) > 1 and mean <= statistics.stdev(diffs))


def _task_differences(candidate: Candidate, leader: Candidate) -> list[float]:
    """Per validation task, log of the candidate's score over the leader's."""
    return [_log_ratio(candidate.scores[t], max(leader.scores[t], FLOOR)) for t in leader.scores]


def _task_tied(diffs: list[float]) -> bool:
    """Whether the leader's lead over the validation tasks could be a few tasks' doing: under
    :data:`SEPARATION` standard errors, and not significant in a one-sided 5% signed-rank test."""
    return _within_errors(diffs) and signed_rank_p(diffs) > SIGNIFICANCE


def signed_rank_p(diffs: list[float]) -> float:
    """One-sided exact p-value of Wilcoxon's signed-rank test that ``diffs`` lean positive.

    Differences within :data:`NEGLIGIBLE` carry no sign (rounding-sized; they are left out, as the
    test leaves out zeros); the others are ranked by size (equal sizes share their mean rank), so
    a task lost or won by a hair weighs least. p is the chance that signs drawn at random give a
    positive rank sum at least as large (1.0 when nothing is left, NaN for a NaN difference)."""
    if any(map(math.isnan, diffs)):
        return math.nan
    kept = [d for d in diffs if not abs(d) <= NEGLIGIBLE]
    if not kept:
        return 1.0
    ranks = _mean_ranks([abs(d) for d in kept])
    doubled = [round(2 * r) for r in ranks]
    observed = sum(r for r, d in zip(doubled, kept) if d > 0)
    counts = {0: 1}
    for r in doubled:
        grown = dict(counts)
        for total, ways in counts.items():
            grown[total + r] = grown.get(total + r, 0) + ways
        counts = grown
    return sum(ways for total, ways in counts.items() if total >= observed) / 2 ** len(kept)


def _mean_ranks(values: list[float]) -> list[float]:
    """Ranks from 1 (smallest) of ``values``, equal values sharing the mean of their ranks."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for k in order[start:end + 1]:
            ranks[k] = (start + end) / 2 + 1
        start = end + 1
    return ranks


def _within_errors(diffs: list[float]) -> bool:
    """Whether a lead of ``mean(diffs)`` is under :data:`SEPARATION` standard errors of ``diffs``,
    or under :data:`NEGLIGIBLE`."""
    if not diffs or not all(map(math.isfinite, diffs)):
        return False
    mean = _mean(diffs)
    if mean <= NEGLIGIBLE or len(diffs) < 2:
        return mean <= NEGLIGIBLE
    return mean <= SEPARATION * statistics.stdev(diffs) / math.sqrt(len(diffs))


def unit_scale(node: ex.Expr) -> ex.Expr:
    """Drop a positive constant factor of the whole formula: the tuned step size absorbs it, and
    a leftover factor would only shift the formula against the learning-rate grid."""
    if isinstance(node, ex.Call) and node.op == "mul":
        a, b = node.args
        if isinstance(a, ex.Num) and a.value > 0:
            return unit_scale(b)
        if isinstance(b, ex.Num) and b.value > 0:
            return unit_scale(a)
        if isinstance(a, ex.Num) and a.value < 0:
            return ex.Call("neg", (unit_scale(b),))
    if isinstance(node, ex.Call) and node.op == "div" and isinstance(node.args[1], ex.Num) and node.args[1].value > 0:
        return unit_scale(node.args[0])
    if isinstance(node, ex.Call) and node.op == "neg":
        return ex.Call("neg", (unit_scale(node.args[0]),))
    if isinstance(node, ex.Call) and node.op in ("add", "sub"):
        factor = _common_factor(node.args)
        if factor:
            return ex.Call(node.op, tuple(_divide(a, factor) for a in node.args))
    return node


def _common_factor(args) -> float | None:
    factors = []
    for a in args:
        if isinstance(a, ex.Call) and a.op == "mul" and isinstance(a.args[0], ex.Num) and a.args[0].value > 0:
            factors.append(a.args[0].value)
        else:
            return None
    return min(factors) if factors else None


def _divide(node: ex.Expr, factor: float) -> ex.Expr:
    value = float(f"{node.args[0].value / factor:.6g}")
    return node.args[1] if value == 1.0 else ex.Call("mul", (ex.Num(value), node.args[1]))


def unit_scaled(formula: Formula, simplify) -> Formula:
    """``formula`` without a positive constant factor of the whole (:func:`unit_scale`), also
    one that only sympy's form shows (``m + m`` is ``2 * m``, so it becomes ``m``); the factor
    must come out exactly (same values, checked) and the rest be writable in the grammar."""
    from ..errors import FormulaError

    rescaled = unit_scale(formula.expr)
    if rescaled != formula.expr:
        formula = simplify(Formula(rescaled, formula.grammar))
    coefficient, rest = formula.sympy.as_coeff_Mul()
    if not (coefficient.is_positive and coefficient != 1 and rest.free_symbols):
        return formula
    try:
        from ..simplify import allowed_operators, from_sympy, same_values

        grammar = formula.grammar
        tree = from_sympy(rest, grammar, allowed_operators(grammar) | ex.operators_used(formula.expr))
        unit = simplify(Formula(grammar.parse(ex.to_text(tree)), grammar))
    except (ImportError, FormulaError, RecursionError, OverflowError, ValueError):
        return formula
    scaled_back = Formula(ex.Call("mul", (ex.Num(float(coefficient)), unit.expr)), formula.grammar)
    return unit if same_values(scaled_back, formula) else formula


def build_candidates(discretisations, grammar, probes, simplify) -> list[Candidate]:
    """Simplify each discretisation, drop duplicates and reject degenerate ones (with a reason)."""
    out, seen = [], set()
    for d in discretisations:
        formula = unit_scaled(simplify(Formula(unit_scale(d.expr), grammar)), simplify)
        if formula.text in seen:
            continue
        seen.add(formula.text)
        out.append(Candidate(formula, d.text, d.log_prob, degenerate_reason(formula, probes)))
    return out


def reject_equivalents(candidates: list[Candidate]) -> None:
    """Reject each candidate that is the same rule as another one (:func:`~dsr_l2o.naming.same_rule_key`:
    ``sign(m)``, ``sign(m_hat)`` and ``sign(m_tilde)`` are one rule), keeping of each rule the one
    already scored, else the simplest, then the first by text (the choice :func:`decide` would make
    between their identical scores). Scoring the others would only repeat its runs."""
    from ..naming import same_rule_key

    groups: dict = {}
    for candidate in candidates:
        if not candidate.rejected:
            key = same_rule_key(candidate.formula)
            groups.setdefault(candidate.formula.text if key is None else key, []).append(candidate)
    for group in groups.values():
        kept = min(group, key=lambda c: (not c.scores, c.formula.size, c.formula.text))
        for candidate in group:
            if candidate is not kept:
                candidate.rejected = f"the same rule as {kept.formula.text}"


def snap_constants(candidate: Candidate, scorer: Scorer, simplify, log) -> Candidate:
    """Replace each constant by the nearest simple value (or drop a factor ~1) where the validation
    ratio changes by less than 1%; keep every change that passes."""
    best = candidate
    for value in sorted({n.value for n in ex.numbers(best.formula.expr)}, key=lambda v: -abs(v)):
        target = min(SIMPLE_CONSTANTS, key=lambda c: abs(math.log(abs(value)) - math.log(c)) if value else 0)
        target = math.copysign(target, value)
        if value == target or not math.isfinite(best.ratio):
            continue
        snapped = _replace(best.formula.expr, value, target)
        formula = simplify(Formula(snapped, best.formula.grammar))
        trial = scorer.score(Candidate(formula, best.raw_text, best.log_prob, stage=best.stage))
        change = abs(trial.ratio / best.ratio - 1) if math.isfinite(trial.ratio) else math.inf
        log(f"snap {ex.format_number(value)} -> {ex.format_number(target)}: {formula.text} "
            f"(ratio {trial.ratio:.4g} vs {best.ratio:.4g}, {'kept' if change < SNAP_TOLERANCE or trial.ratio < best.ratio else 'rejected'})")
        if change < SNAP_TOLERANCE or trial.ratio < best.ratio:
            best = trial
    return best


def _replace(node: ex.Expr, value: float, target: float) -> ex.Expr:
    if isinstance(node, ex.Num):
        return ex.Num(target) if node.value == value else node
    if isinstance(node, ex.Call):
        return ex.Call(node.op, tuple(_replace(a, value, target) for a in node.args))
    if isinstance(node, ex.Power):
        return ex.Power(_replace(node.base, value, target), node.exponent)
    return node
