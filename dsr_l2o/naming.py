"""Name a found rule after the published one it equals, or else the one it is closest to.

The published rules (``published_rules.yaml``: SGD, momentum, Adam, Lion, Grams, cautious
momentum, ...) each live in a shipped grammar. Rules of different grammars are compared by what
their operands *are*, not by their names: every operand is replaced by its definition (an EMA's
source, beta and debiasing; an ``expr`` operand's expression, inlined), so ``m_tilde`` of one
grammar and ``m_hat / (sqrt(v_hat) + 1e-8)`` of another are the same quantity.

* **Equal** means equal up to a positive scale, proved by sympy: ``f / rule`` simplifies to a
  positive number (the learning rate absorbs it). A formula that equals a rule only once the
  moving averages' betas are set aside (Adam's direction at betas 0.95 and 0.99) is named
  "equal to Adam at betas (0.95, 0.99)": the rule, with the formula's own betas.
* Otherwise the **correlation** r is the cosine between the two update directions, averaged
  over recorded steps: the operands of each grammar are tracked along the same real training
  runs of built-in tasks (Adam-driven, a fixed subset of coordinates, as every rule is per
  coordinate).

A rule with a coefficient (``{c}``, e.g. soft cautious momentum ``m + c * sign(g) * abs(m)``) is
tried at the coefficients the found formula itself contains (and their ratios), and for the
correlation also on a grid over its range.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources

import sympy as sp
import torch
import yaml

from .errors import ResultError
from .formula import Formula, parse_formula
from .grammar import Grammar, load_grammar
from .layout import dispatch, moving_averages
from .search.features import OperandTracker

PROBE_TASKS = ("quadratic_illcond", "logreg_cancer", "mlp_digits_relu")
PROBE_STEPS = 30
PROBE_COORDINATES = 256
PROBE_LR = 0.01
EQUAL_CORRELATION = 0.9999
OTHER_BETAS_TRIED = 5
"""How many of the best-correlated rules are tried again with the betas set aside."""
MAX_SIZE_FOR_SYMPY = 60
C_GRID = tuple(round(0.1 * k, 1) for k in range(1, 11))


@dataclass(frozen=True)
class PublishedRule:
    """One published update rule: its direction in a shipped grammar, and where it comes from."""

    name: str
    formula: str
    grammar: str
    reference: str
    c_range: tuple[float, float] | None = None
    c_default: float | None = None

    def at(self, c: float | None = None) -> Formula:
        """The rule as a formula, its coefficient set to ``c`` (or its default)."""
        text = self.formula if self.c_range is None else self.formula.replace("{c}", repr(float(c or self.c_default)))
        return parse_formula(text, _shipped_grammar(self.grammar))


@lru_cache(maxsize=16)
def _shipped_grammar(name: str) -> Grammar:
    return load_grammar(name)


@dataclass(frozen=True)
class RuleName:
    """What a formula is among published rules: ``equal_to`` one (up to a positive scale), else
    ``closest_to`` one with the correlation of their update directions."""

    equal_to: str | None
    closest_to: str | None
    correlation: float
    reference: str
    rule_formula: str
    coefficient: float | None = None
    scale: float | None = None
    betas: tuple[float, ...] | None = None
    """The formula's moving-average betas, where it equals the rule only at other betas."""

    @property
    def name(self) -> str:
        """The published rule's name, with its coefficient (and other betas) where it has them."""
        base = self.equal_to or self.closest_to or "?"
        if self.coefficient is not None:
            base = f"{base} with c = {self.coefficient:g}"
        if self.betas:
            base = f"{base} at betas ({', '.join(f'{b:g}' for b in self.betas)})"
        return base

    def text(self) -> str:
        """One line: ``equal to Adam (Kingma & Ba 2015)`` or ``closest to ... , r = 0.97``."""
        if self.equal_to:
            return f"equal to {self.name} ({self.reference})"
        return f"closest to {self.name} ({self.reference}), r = {math.floor(self.correlation * 1000) / 1000:.3f}"

    def to_json(self) -> dict:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "RuleName":
        """Inverse of :meth:`to_json`; a malformed dict raises :class:`ResultError`."""
        try:
            betas = data.get("betas")
            return cls(**{k: data[k] for k in ("equal_to", "closest_to", "correlation", "reference", "rule_formula")},
                       coefficient=data.get("coefficient"), scale=data.get("scale"),
                       betas=None if betas is None else tuple(float(b) for b in betas))
        except (KeyError, TypeError, ValueError) as err:
            raise ResultError(f"rule name: malformed record ({err}); regenerate it with name_rule") from err


@lru_cache(maxsize=1)
def published_rules() -> tuple[PublishedRule, ...]:
    """The library of published rules shipped as ``dsr_l2o/published_rules.yaml``."""
    text = resources.files("dsr_l2o").joinpath("published_rules.yaml").read_text(encoding="utf-8")
    rules = []
    for entry in yaml.safe_load(text)["rules"]:
        coefficient = entry.get("c") or {}
        rules.append(PublishedRule(entry["name"], entry["formula"], entry["grammar"], entry["reference"],
                                   tuple(coefficient["range"]) if coefficient else None, coefficient.get("default")))
    return tuple(rules)


class _Definitions:
    """The layout backend that maps each operand to a symbol named after its definition (with or
    without the moving averages' betas)."""

    def __init__(self, grammar: Grammar, betas: bool = True, debias_factor: bool = False):
        self.grammar, self.mapping, self.betas, self.debias_factor = grammar, {}, betas, debias_factor

    def gradient(self, op):
        return sp.Symbol("g", real=True)

    def parameter(self, op):
        return sp.Symbol("w", real=True)

    def step(self, op):
        return sp.Symbol("t", positive=True)

    def derived(self, op):
        return self.grammar.to_sympy(op.source).xreplace(self.mapping)

    def average(self, op):
        source = self.derived(op)
        beta = f"|{op.beta!r}" if self.betas else ""
        assumptions = {"nonnegative": True} if op.nonnegative else {"real": True}
        if self.debias_factor and op.debias:  # s / (1 - beta^t): the average times a positive factor
            return sp.Symbol(f"ema[{source}{beta}]", **assumptions) * sp.Symbol(f"debias[{op.beta!r}]", positive=True)
        label = f"ema[{source}{beta}{'|debiased' if op.debias else ''}]"
        return sp.Symbol(label, **assumptions)

    def previous(self, op):
        label = f"prev[{self.derived(op)}]"
        return sp.Symbol(label, **({"nonnegative": True} if op.nonnegative else {"real": True}))

    def norm(self, op):
        return sp.Symbol(f"norm[{self.derived(op)}]", nonnegative=True)


@lru_cache(maxsize=64)
def _definitions(grammar: Grammar, betas: bool = True, debias_factor: bool = False) -> dict[sp.Symbol, sp.Expr]:
    """Each operand symbol of ``grammar`` mapped to its definition: a symbol named after what an
    EMA averages (so equal definitions in any grammar give one symbol), an ``expr`` inlined.
    With ``betas=False`` averages of one source at different betas are one symbol; with
    ``debias_factor`` a debiased average is the average times a positive symbol of its own."""
    backend = _Definitions(grammar, betas, debias_factor)
    for name, operand in grammar.operands.items():
        backend.mapping[grammar.symbol(name)] = dispatch(operand, backend)
    return backend.mapping


def definition_sympy(formula: Formula, betas: bool = True, debias_factor: bool = False) -> sp.Expr:
    """The formula over operand definitions (comparable across grammars), floats made exact."""
    return sp.nsimplify(formula.sympy.xreplace(_definitions(formula.grammar, betas, debias_factor)), rational=True)


def same_rule_key(formula: Formula) -> sp.Expr | None:
    """A key two formulas share when they are the same function of what their operands are: the
    operands' definitions, a debiased average as the average times its positive factor (so
    ``sign(m)``, ``sign(m_hat)`` and ``sign(m_hat / (sqrt(v_hat) + 1e-8))`` share one, and ``m``
    and ``m_hat`` do not). ``None`` for a formula too large to canonicalise quickly. Equal keys
    are sympy's structural equality, so a formula that only simplifying shows equal keeps its own."""
    if formula.size > MAX_SIZE_FOR_SYMPY:
        return None
    return definition_sympy(formula, debias_factor=True)


def _averages(formula: Formula) -> list[tuple[tuple[str, bool], float]]:
    """``((source, debiased), beta)`` of each moving average the formula reads, in grammar order."""
    grammar = formula.grammar
    read = set(grammar.dependencies(formula.operands))
    return [((str(op.source), op.debias), op.beta) for op in moving_averages(grammar) if op.name in read]


def moving_average_betas(formula: Formula, rule: Formula) -> tuple[float, ...]:
    """The formula's betas, one per moving average of ``rule`` and in the rule's order."""
    own = dict(_averages(formula))
    return tuple(own[key] for key, _ in _averages(rule) if key in own)


def one_beta_per_average(formula: Formula) -> bool:
    """Whether the formula averages each quantity at one beta only (so that setting the betas
    aside does not merge two different averages into one)."""
    keys = [key for key, _ in _averages(formula)]
    return len(keys) == len(set(keys))


def positive_scale(formula: Formula, rule: Formula, betas: bool = True) -> float | None:
    """``k > 0`` with ``formula == k * rule`` for every operand value (sympy proves it), else None
    (also for formulas too large to simplify quickly). ``betas=False`` sets the moving averages'
    betas aside."""
    if formula.size > MAX_SIZE_FOR_SYMPY:
        return None
    return _constant_ratio(definition_sympy(formula, betas), definition_sympy(rule, betas))


@lru_cache(maxsize=1024)
def _constant_ratio(f: sp.Expr, r: sp.Expr) -> float | None:
    """``f / r`` when sympy simplifies it to a positive number, else None."""
    if f == 0 or r == 0:
        return None
    ratio = sp.simplify(f / r)
    if ratio.free_symbols or not ratio.is_number or not ratio.is_positive:
        return None
    return float(ratio)


@lru_cache(maxsize=1)
def _trajectories() -> tuple[tuple[tuple[tuple[torch.Tensor, torch.Tensor], ...], tuple[int, ...], torch.Tensor], ...]:
    """Per probe task: ``(grad, param)`` (whole flat vectors) at each step of a short Adam run,
    the sizes of the task's parameter tensors, and the fixed coordinates that are recorded."""
    from .tasks.registry import get_task

    with torch.enable_grad():
        return tuple(_adam_run(get_task(name)) for name in PROBE_TASKS)


def _adam_run(task):
    params = [p.detach().float().clone().requires_grad_(True) for p in task.init(0)]
    sizes = tuple(p.numel() for p in params)
    keep = torch.randperm(sum(sizes), generator=torch.Generator().manual_seed(0))[:PROBE_COORDINATES].sort().values
    optimizer = torch.optim.Adam(params, lr=PROBE_LR)
    steps = []
    for t in range(PROBE_STEPS):
        grads = torch.autograd.grad(task.loss(params, t), params)
        flat_grad = torch.cat([gr.reshape(-1) for gr in grads]).double()
        if not torch.isfinite(flat_grad).all():
            break
        flat_param = torch.cat([p.detach().reshape(-1) for p in params]).double()
        steps.append((flat_grad, flat_param))
        for p, gr in zip(params, grads):
            p.grad = gr
        optimizer.step()
    return tuple(steps), sizes, keep


@lru_cache(maxsize=64)
def recorded_operands(grammar: Grammar) -> tuple[dict[str, torch.Tensor], ...]:
    """Per probe run, every operand of ``grammar`` at every recorded step (``[steps, coordinates]``);
    operands are computed on the whole parameter vector (per-tensor norms included), then the
    fixed coordinates are kept."""
    tracker = OperandTracker(grammar, grammar.operands)
    runs = []
    for run, sizes, keep in _trajectories():
        if not run:
            continue
        state, steps = tracker.init(run[0][0]), []
        for t, (grad, param) in enumerate(run, 1):
            state, values = tracker.step(state, grad, param, t, sizes)
            steps.append({name: value[keep] for name, value in values.items()})
        runs.append({name: torch.stack([v[name] for v in steps]) for name in steps[0]})
    return tuple(runs)


def _directions(formula: Formula) -> torch.Tensor:
    """The formula's update at every recorded step, as rows (runs side by side, zero-padded)."""
    recorded = recorded_operands(formula.grammar)
    with torch.no_grad():
        blocks = [formula.evaluate(values) for values in recorded]
    width = max(b.shape[1] for b in blocks)
    return torch.cat([torch.nn.functional.pad(b, (0, width - b.shape[1])) for b in blocks])


@lru_cache(maxsize=512)
def _rule_directions(rule: PublishedRule, c: float | None) -> torch.Tensor:
    return _directions(rule.at(c))


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean cosine of two update directions over recorded steps (rows); rows where either is
    zero or not finite are skipped, and none left gives 0."""
    na, nb = a.norm(dim=1), b.norm(dim=1)
    valid = (na > 0) & (nb > 0) & torch.isfinite(na) & torch.isfinite(nb)
    if not valid.any():
        return 0.0
    cosines = (a[valid] * b[valid]).sum(dim=1) / (na[valid] * nb[valid])
    return float(cosines.mean())


def _coefficients(rule: PublishedRule, formula: Formula) -> list[float | None]:
    if rule.c_range is None:
        return [None]
    numbers = {abs(float(n)) for n in formula.sympy.atoms(sp.Number) if n != 0 and math.isfinite(float(n))}
    found = numbers | {a / b for a, b in itertools.permutations(numbers, 2)}
    lo, hi = rule.c_range
    values = {round(c, 12) for c in found if lo < c <= hi} | {rule.c_default} | set(C_GRID)
    return sorted(values)


def name_rule(formula: Formula | str) -> RuleName:
    """The published rule ``formula`` equals up to a positive scale, else the closest one by the
    correlation of update directions on recorded operands (see the module docstring). A string is
    parsed in the default grammar."""
    formula = parse_formula(formula) if isinstance(formula, str) else formula
    directions = _directions(formula)
    scored = []
    for rule in published_rules():
        for c in _coefficients(rule, formula):
            scored.append((correlation(directions, _rule_directions(rule, c)), rule, c))
    scored.sort(key=lambda item: -item[0])
    for r, rule, c in scored:
        if r < EQUAL_CORRELATION:
            break
        scale = positive_scale(formula, rule.at(c))
        if scale is not None:
            return RuleName(rule.name, None, 1.0, rule.reference, rule.at(c).text, c, scale)
    for r, rule, c in scored[:OTHER_BETAS_TRIED] if one_beta_per_average(formula) else ():
        if not one_beta_per_average(rule.at(c)):
            continue
        scale = positive_scale(formula, rule.at(c), betas=False)
        if scale is not None:
            return RuleName(rule.name, None, round(r, 4), rule.reference, rule.at(c).text, c, scale,
                            moving_average_betas(formula, rule.at(c)))
    r, rule, c = scored[0]
    return RuleName(None, rule.name, round(r, 4), rule.reference, rule.at(c).text, c)
