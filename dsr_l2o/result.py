"""Typed results and the one reader of a result directory (``load_result(DIR)``).

A search returns a :class:`SearchResult` and a distillation a :class:`DistillResult`; each is
written to ``DIR/result.json`` by its ``to_json`` and read back by ``from_json``, which every
command, export and the docs use. ``result.json`` carries ``schema_version``; keys this version
does not know are kept in ``extra`` and written back unchanged.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import DsrError, ResultError, shorten
from .formula import Formula, parse_formula
from .grammar import Grammar, load_grammar

MAX_JSON_BYTES = 50_000_000
SCHEMA_VERSION = 2
"""Version 1 had no ``schema_version``; version 2 adds it and the typed fields below."""


def _number(value) -> float | None:
    """A finite number, else ``None`` (result files are untrusted)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _numbers(value) -> dict[str, float | None]:
    return {str(k): _number(v) for k, v in value.items()} if isinstance(value, dict) else {}


def _text(value) -> str | None:
    return value if isinstance(value, str) else None


def _mapping(value) -> dict:
    return value if isinstance(value, dict) else {}


def _finite_json(value):
    """``value`` with non-finite floats as ``None`` (strict JSON has no NaN/Infinity)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


@dataclass
class Candidate:
    """One formula considered: a search's validation scores, or a distillation's fit."""

    formula: str
    raw_formula: str | None = None
    stage: str | None = None
    log_prob: float | None = None
    rejected: str | None = None
    score_ratio_to_adam: float | None = None
    lr: float | None = None
    scores: dict[str, float | None] = field(default_factory=dict)
    best_lrs: dict[str, float | None] = field(default_factory=dict)
    complexity: int | None = None
    alpha: float | None = None
    r2: float | None = None

    def to_json(self) -> dict:
        return _finite_json({f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
                             or f.name in ("rejected", "score_ratio_to_adam", "lr")})

    @classmethod
    def from_json(cls, data: dict) -> "Candidate | None":
        if not isinstance(data, dict) or not isinstance(data.get("formula"), str):
            return None
        complexity = data.get("complexity")
        return cls(data["formula"], _text(data.get("raw_formula")), _text(data.get("stage")),
                   _number(data.get("log_prob")), _text(data.get("rejected")), _number(data.get("score_ratio_to_adam")),
                   _number(data.get("lr")), _numbers(data.get("scores")), _numbers(data.get("best_lrs")),
                   complexity if isinstance(complexity, int) and not isinstance(complexity, bool) else None,
                   _number(data.get("alpha")), _number(data.get("r2")))


@dataclass
class Validation:
    """How the chosen formula scored on the validation tasks (ratios to tuned Adam)."""

    tasks: list[str]
    protocol: dict
    score_ratio_to_adam: float | None
    scores: dict[str, float | None]
    adam_scores: dict[str, float | None]
    best_lrs: dict[str, float | None]

    def to_json(self) -> dict:
        return _finite_json({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_json(cls, data) -> "Validation | None":
        if not isinstance(data, dict):
            return None
        tasks = [t for t in data.get("tasks", []) if isinstance(t, str)] if isinstance(data.get("tasks"), list) else []
        return cls(tasks, _mapping(data.get("protocol")), _number(data.get("score_ratio_to_adam")),
                   _numbers(data.get("scores")), _numbers(data.get("adam_scores")), _numbers(data.get("best_lrs")))


@dataclass
class RuleResult:
    """What every result directory holds: the formula (parsed in its grammar), its step size,
    how it was found, the formulas considered and the settings. ``directory`` is where it lives."""

    formula: Formula
    lr: float | None
    candidates: list[Candidate] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    created: str | None = None
    dsr_l2o_version: str | None = None
    naming: dict | None = None
    """What the formula equals or is closest to among published rules (:mod:`dsr_l2o.naming`)."""
    directory: Path | None = None
    extra: dict = field(default_factory=dict)
    text: str | None = None
    """The formula as written in the file read (written back unchanged); ``None``: ``formula.text``."""

    route = "search"
    _OWN = ()

    @property
    def grammar(self) -> Grammar:
        return self.formula.grammar

    @property
    def latex(self) -> str:
        from .notation import latex

        return latex(self.grammar, self.formula.sympy)

    @property
    def complexity(self) -> int:
        return self.formula.size

    def optimizer(self, params, lr: float | None = None, **kwargs):
        """A :class:`~dsr_l2o.optimizer.SymbolicOptimizer` running the rule."""
        from .optimizer import SymbolicOptimizer

        step = lr if lr is not None else self.lr
        if step is None:
            raise ResultError(f"{self.directory}: result has no lr; pass lr=...")
        return SymbolicOptimizer(params, self.formula, lr=step, **kwargs)

    def to_json(self) -> dict:
        """The ``result.json`` document."""
        data = dict(self.extra)
        data.update({
            "schema_version": SCHEMA_VERSION, "route": self.route, "formula": self.text or self.formula.text, "lr": self.lr,
            "latex": self.latex, "complexity": self.complexity, "grammar": self.grammar.name,
            "candidates": [c.to_json() for c in self.candidates], "metrics": self.metrics, "config": self.config,
            "created": self.created, "dsr_l2o_version": self.dsr_l2o_version, "naming": self.naming,
        })
        data.update(self._own_json())
        return _finite_json(data)

    @property
    def data(self) -> dict:
        """The result as the JSON document (what older code read as a dict)."""
        return self.to_json()

    def _own_json(self) -> dict:
        return {}

    @classmethod
    def from_json(cls, data: dict, formula: Formula, directory: Path | None = None) -> "RuleResult":
        """The typed result of a ``result.json`` document whose formula is already parsed."""
        known = {"schema_version", "route", "formula", "lr", "latex", "complexity", "grammar", "candidates",
                 "metrics", "config", "created", "dsr_l2o_version", "naming", *cls._OWN}
        candidates = [c for c in map(Candidate.from_json, data.get("candidates") or []) if c is not None] \
            if isinstance(data.get("candidates"), list) else []
        common = dict(formula=formula, lr=_number(data.get("lr")), candidates=candidates,
                      metrics=_mapping(data.get("metrics")), config=_mapping(data.get("config")),
                      created=_text(data.get("created")), dsr_l2o_version=_text(data.get("dsr_l2o_version")),
                      naming=data.get("naming") if isinstance(data.get("naming"), dict) else None,
                      directory=directory, extra={k: v for k, v in data.items() if k not in known},
                      text=data["formula"])
        return cls(**common, **cls._own_from_json(data))

    @classmethod
    def _own_from_json(cls, data: dict) -> dict:
        return {}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.directory)!r}, formula={self.formula.text!r}, lr={self.lr})"


@dataclass(repr=False)
class SearchResult(RuleResult):
    """A finished search: which stage found the formula, the relaxation's own argmax, validation."""

    raw_formula: str | None = None
    relaxation_argmax: str | None = None
    stage: str | None = None
    grow: dict | None = None
    validation: Validation | None = None
    device: str | None = None

    route = "search"
    _OWN = ("raw_formula", "relaxation_argmax", "stage", "grow", "validation", "device")

    def _own_json(self) -> dict:
        return {"raw_formula": self.raw_formula, "relaxation_argmax": self.relaxation_argmax, "stage": self.stage,
                "grow": self.grow, "validation": self.validation.to_json() if self.validation else None,
                "device": self.device}

    @classmethod
    def _own_from_json(cls, data: dict) -> dict:
        grow = data.get("grow")
        return {"raw_formula": _text(data.get("raw_formula")), "relaxation_argmax": _text(data.get("relaxation_argmax")),
                "stage": _text(data.get("stage")), "grow": grow if isinstance(grow, dict) else None,
                "validation": Validation.from_json(data.get("validation")), "device": _text(data.get("device"))}


@dataclass(repr=False)
class DistillResult(RuleResult):
    """A finished distillation: the teacher and how much of its updates the formula explains."""

    teacher: str | None = None
    r2: float | None = None
    alpha: float | None = None
    exact: bool | None = None
    """Whether the formula steps along a positive multiple of the teacher's update on held-out tasks."""
    heldout_error: float | None = None
    fits: bool | None = None
    note: str | None = None
    missing_operand: dict | None = None
    """The grammar line that would make a formula exact, when none of the grammar is."""

    route = "distil"
    _OWN = ("teacher", "r2", "alpha", "exact", "heldout_error", "fits", "note", "missing_operand")

    def _own_json(self) -> dict:
        return {"teacher": self.teacher, "r2": self.r2, "alpha": self.alpha, "exact": self.exact,
                "heldout_error": self.heldout_error, "fits": self.fits, "note": self.note,
                "missing_operand": self.missing_operand}

    @classmethod
    def _own_from_json(cls, data: dict) -> dict:
        flag = lambda key: data.get(key) if isinstance(data.get(key), bool) else None  # noqa: E731
        missing = data.get("missing_operand")
        return {"teacher": _text(data.get("teacher")), "r2": _number(data.get("r2")), "alpha": _number(data.get("alpha")),
                "exact": flag("exact"), "heldout_error": _number(data.get("heldout_error")), "fits": flag("fits"),
                "note": _text(data.get("note")), "missing_operand": missing if isinstance(missing, dict) else None}


ROUTES = {"search": SearchResult, "distil": DistillResult}


@dataclass
class Evaluation:
    """``evaluation.json``: a formula and tuned baselines under one protocol (``dsr-l2o evaluate``).

    ``tasks[task]`` holds each optimizer's tuned result with its rank, ``ratio_to_reference`` and
    ``ratio_to_best_baseline`` the per-task ratios, the ``geomean_*`` fields their geometric means.
    Fields of the wrong type read as empty; unknown keys are kept in ``extra``.
    """

    protocol: dict = field(default_factory=dict)
    optimizers: list = field(default_factory=list)
    candidates: list[str] = field(default_factory=list)
    baselines: list[str] = field(default_factory=list)
    tasks: dict = field(default_factory=dict)
    reference: str | None = None
    ratio_to_reference: dict = field(default_factory=dict)
    geomean_ratio_to_reference: dict = field(default_factory=dict)
    ratio_to_best_baseline: dict = field(default_factory=dict)
    geomean_ratio_to_best_baseline: dict = field(default_factory=dict)
    formula: dict | None = None
    extra: dict = field(default_factory=dict)

    _DICTS = ("protocol", "tasks", "ratio_to_reference", "geomean_ratio_to_reference", "ratio_to_best_baseline",
              "geomean_ratio_to_best_baseline")

    def to_json(self) -> dict:
        data = dict(self.extra)
        data.update({f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"})
        data["schema_version"] = SCHEMA_VERSION
        return _finite_json(data)

    @classmethod
    def from_json(cls, data: dict) -> "Evaluation":
        known = {f.name for f in fields(cls)} | {"schema_version"}
        names = lambda key: [x for x in data.get(key) or [] if isinstance(x, str)] \
            if isinstance(data.get(key), list) else []  # noqa: E731
        return cls(**{key: _mapping(data.get(key)) for key in cls._DICTS},
                   optimizers=[o for o in data.get("optimizers") or [] if isinstance(o, dict)]
                   if isinstance(data.get("optimizers"), list) else [],
                   candidates=names("candidates"), baselines=names("baselines"), reference=_text(data.get("reference")),
                   formula=data.get("formula") if isinstance(data.get("formula"), dict) else None,
                   extra={k: v for k, v in data.items() if k not in known})


def read_json(path: Path, what: str) -> dict:
    """A JSON object from ``path``, or a one-line :class:`ResultError`."""
    if path.stat().st_size > MAX_JSON_BYTES:
        raise ResultError(f"{path}: larger than 50 MB; not a {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_int=_json_int, parse_constant=_json_constant)
    except (UnicodeDecodeError, ValueError) as err:
        raise ResultError(f"{path}: not valid JSON ({shorten(err, 120)}); re-run the search or fix the file") from None
    except RecursionError:
        raise ResultError(f"{path}: JSON nests too deeply; not a {what}") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: must hold a JSON object, not {type(data).__name__}")
    return data


MAX_JSON_INT_DIGITS = 300


def _json_int(text: str) -> int | float:
    if len(text) > MAX_JSON_INT_DIGITS:
        raise ValueError(f"a number with {len(text)} digits")
    return int(text)


def _json_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def save_result(result: RuleResult, directory: str | Path) -> RuleResult:
    """Write ``directory/result.json`` (atomically) and ``grammar.yaml`` from ``result``; returns it."""
    from .atomic import write_json, write_text

    directory = Path(directory)
    write_text(directory / "grammar.yaml", result.grammar.source_text)
    write_json(directory / "result.json", result.to_json())
    result.directory = directory
    return result


def load_result(directory: str | Path) -> RuleResult:
    """Load ``DIR/result.json`` and ``DIR/grammar.yaml`` written by a search or a distillation.

    ``grammar.yaml`` may be absent when the result says its grammar is ``default``.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ResultError(f"{directory}: not a directory; pass the --out directory of 'dsr-l2o search'")
    result_path = directory / "result.json"
    if not result_path.is_file():
        raise ResultError(f"{result_path}: missing; is {directory} the --out directory of a finished "
                          "'dsr-l2o search' (or one to --resume)?")
    data = read_json(result_path, "result file")
    if not isinstance(data.get("formula"), str):
        raise ResultError(f"{result_path}: needs a string field 'formula' (the discovered update rule)")
    grammar_path = directory / "grammar.yaml"
    if grammar_path.is_file():
        grammar = load_grammar(grammar_path)
    elif data.get("grammar", "default") == "default":
        grammar = load_grammar(None)
    else:
        raise ResultError(f"{grammar_path}: missing; the result was found in grammar "
                          f"{data.get('grammar')!r}, copy that grammar file there")
    try:
        formula = parse_formula(data["formula"], grammar)
    except DsrError as err:
        raise ResultError(f"{result_path}: formula {shorten(repr(data['formula']), 60)} does not parse: {err}") from None
    cls = ROUTES.get(data.get("route"), SearchResult)
    return cls.from_json(data, formula, directory)


__all__ = ["Candidate", "DistillResult", "Evaluation", "RuleResult", "SearchResult", "Validation", "load_result",
           "read_json", "save_result", "SCHEMA_VERSION"]
