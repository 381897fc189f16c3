"""Optimizers to compare: the hand-designed baselines and discovered formulas, behind one interface.

Every baseline uses its implementation's default hyper-parameters except the learning rate, which
the protocol tunes on the shared grid, and except where noted below. Lion, PowerSign and AddSign
are formulas run by :class:`~dsr_l2o.optimizer.SymbolicOptimizer`, exactly as a discovered formula
would be. The ``modern`` ones come from maintained libraries, installed with the ``baselines``
extra (``pip install -e ".[baselines]"``); asking for one without its library is a one-line error.

==================  ================================================================  =================
name                implementation and settings                                       package
==================  ================================================================  =================
sgd                 ``torch.optim.SGD``                                               torch
momentum            ``torch.optim.SGD``, momentum 0.9                                 torch
nesterov            ``torch.optim.SGD``, Nesterov momentum 0.9                        torch
rmsprop             ``torch.optim.RMSprop`` (alpha 0.99)                              torch
adam                ``torch.optim.Adam``, betas (0.9, 0.999), eps 1e-8                torch
adamw               ``torch.optim.AdamW``, decoupled weight decay 0.01                torch
lion                formula ``sign(m + 0.1*g)``, m = ema(g, 0.99)                     (grammars/lion.yaml)
powersign           formula ``exp(sign(g)*sign(m))*g``, m = ema(g, 0.9)               (default grammar)
addsign             formula ``(1 + sign(g)*sign(m))*g``, m = ema(g, 0.9)              (default grammar)
nadam               ``torch.optim.NAdam``                                             torch
muon                ``torch.optim.Muon`` on 2-D tensors + ``AdamW`` on the rest       torch
grams               ``pytorch_optimizer.Grams``                                       pytorch-optimizer
adopt               ``pytorch_optimizer.ADOPT``                                       pytorch-optimizer
laprop              ``pytorch_optimizer.LaProp``                                      pytorch-optimizer
mars                ``pytorch_optimizer.MARS``, ``optimize_1d=True``                  pytorch-optimizer
ademamix            ``pytorch_optimizer.AdEMAMix``                                    pytorch-optimizer
cautious_adamw      ``pytorch_optimizer.AdEMAMix``, alpha 0, weight decay 0.01        pytorch-optimizer
                    decoupled, ``cautious=True``
schedulefree_adamw  ``schedulefree.AdamWScheduleFree`` (``.train()``/``.eval()``)     schedulefree
==================  ================================================================  =================

Where a default would bypass the tuned learning rate it is changed, so the grid applies to every
parameter:

* ``mars``: by default MARS steps 1-D tensors (biases, and the whole parameter vector of the
  quadratic and Rosenbrock tasks) with a built-in AdamW at its own ``lr_1d=3e-3``, whatever ``lr``
  is; ``optimize_1d=True`` makes MARS step every tensor at the tuned ``lr``.
* ``muon``: Muon takes only 2-D tensors; the others go to AdamW at the same ``lr``, and Muon's
  ``adjust_lr_fn="match_rms_adamw"`` scales its update to AdamW's RMS so one lr fits both; both use
  weight decay 0.01 (see :mod:`.muon_adamw`). On tasks without 2-D tensors it is AdamW.
* ``cautious_adamw``: pytorch-optimizer has no AdamW class with a ``cautious`` flag; its AdEMAMix
  with ``alpha=0`` is exactly AdamW (the slow average gets weight 0), and ``cautious=True`` masks
  the momentum where it disagrees with the gradient's sign (Liang et al., 2024).

An optimizer with ``.train()`` and ``.eval()`` methods (the schedule-free convention) is put in train
mode when it is built and in eval mode (:func:`eval_mode`) before the final parameters are read
for the held-out metric. Beyond these names, :func:`get_baseline` accepts ``"module:Class"``, an
optimizer class or a factory ``(params, lr) -> optimizer`` (see :mod:`.optimizer_spec`).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import Callable

import torch

from ..errors import ConfigError
from ..formula import Formula, parse_formula
from ..grammar import Grammar, data_path, load_grammar

MakeOptimizer = Callable[[list[torch.Tensor], float], torch.optim.Optimizer]
EXTRA_HINT = 'pip install -e ".[baselines]"'


@dataclass(frozen=True)
class OptimizerSpec:
    """A named way to build an optimizer for a list of parameters at a given learning rate.

    ``formula`` is the update rule's text for formula optimizers (``None`` for library ones),
    ``grammar`` the name of the grammar it is parsed in.
    """

    name: str
    make: MakeOptimizer
    formula: str | None = None
    grammar: str | None = None


@dataclass(frozen=True)
class LibraryBaseline:
    """A baseline that is a class of an installed library with fixed keyword settings."""

    module: str
    attr: str
    settings: dict = field(default_factory=dict)
    package: str | None = None  # the pip package that provides ``module`` (None: torch itself)


TORCH = "torch.optim"
PO = "pytorch_optimizer"
LIBRARY_BASELINES: dict[str, LibraryBaseline] = {
    "sgd": LibraryBaseline(TORCH, "SGD"),
    "momentum": LibraryBaseline(TORCH, "SGD", {"momentum": 0.9}),
    "nesterov": LibraryBaseline(TORCH, "SGD", {"momentum": 0.9, "nesterov": True}),
    "rmsprop": LibraryBaseline(TORCH, "RMSprop"),
    "adam": LibraryBaseline(TORCH, "Adam"),
    "adamw": LibraryBaseline(TORCH, "AdamW"),
    "nadam": LibraryBaseline(TORCH, "NAdam"),
    "muon": LibraryBaseline("dsr_l2o.evaluation.muon_adamw", "MuonWithAdamW"),
    "grams": LibraryBaseline(PO, "Grams", package="pytorch-optimizer"),
    "adopt": LibraryBaseline(PO, "ADOPT", package="pytorch-optimizer"),
    "laprop": LibraryBaseline(PO, "LaProp", package="pytorch-optimizer"),
    "mars": LibraryBaseline(PO, "MARS", {"optimize_1d": True}, package="pytorch-optimizer"),
    "ademamix": LibraryBaseline(PO, "AdEMAMix", package="pytorch-optimizer"),
    "cautious_adamw": LibraryBaseline(PO, "AdEMAMix", {"alpha": 0.0, "weight_decay": 0.01, "weight_decouple": True,
                                                      "cautious": True}, package="pytorch-optimizer"),
    "schedulefree_adamw": LibraryBaseline("schedulefree", "AdamWScheduleFree", package="schedulefree"),
}

FORMULA_BASELINES: dict[str, tuple[str, str | None]] = {
    "lion": ("sign(m + 0.1 * g)", "lion.yaml"),
    "powersign": ("exp(sign(g) * sign(m)) * g", None),
    "addsign": ("(1 + sign(g) * sign(m)) * g", None),
}

CLASSIC_BASELINES: tuple[str, ...] = ("sgd", "momentum", "nesterov", "rmsprop", "adam", "adamw", "lion",
                                      "powersign", "addsign")
MODERN_BASELINES: tuple[str, ...] = ("nadam", "muon", "grams", "adopt", "laprop", "mars", "ademamix",
                                     "cautious_adamw", "schedulefree_adamw")
BASELINE_NAMES: tuple[str, ...] = CLASSIC_BASELINES + MODERN_BASELINES
BASELINE_GROUPS: dict[str, tuple[str, ...]] = {"classic": CLASSIC_BASELINES, "modern": MODERN_BASELINES,
                                               "all": BASELINE_NAMES}


def is_available(name: str) -> bool:
    """Whether the library of baseline ``name`` is installed (formula and torch ones always are)."""
    entry = LIBRARY_BASELINES.get(name)
    return entry is None or entry.package is None or find_spec(entry.module) is not None


def expand_group(name: str) -> tuple[list[str], list[str]]:
    """``(available, missing)`` baseline names of group ``name`` (``classic``, ``modern``, ``all``)."""
    names = BASELINE_GROUPS[name]
    return [n for n in names if is_available(n)], [n for n in names if not is_available(n)]


def parse_baseline_list(text: str | None) -> tuple[list[str], list[str]]:
    """``(specs, skipped)`` of a ``--baselines`` value: comma-separated names, ``module:Class``
    specs and groups (``classic``, ``modern``, ``all``; ``None`` means ``all``), or ``none``.

    A group brings the baselines of it whose library is installed; ``skipped`` lists the others.
    A baseline named on its own must be installed (:func:`get_baseline` says how).
    """
    items = [part.strip() for part in ("all" if text is None else text).split(",") if part.strip()]
    if [item.lower() for item in items] == ["none"]:
        return [], []
    if not items:
        raise ConfigError("--baselines is empty; give names, groups (classic, modern, all), "
                          "'module:Class' specs or 'none'")
    specs, skipped = [], []
    for item in items:
        if item.lower() in BASELINE_GROUPS:
            available, missing = expand_group(item.lower())
            specs += [n for n in available if n not in specs]
            skipped += [n for n in missing if n not in skipped]
        else:
            specs.append(item)
    return specs, skipped


def train_mode(optimizer):
    """Call ``optimizer.train()`` where it has one (schedule-free optimizers need it before stepping)."""
    if callable(getattr(optimizer, "train", None)):
        optimizer.train()
    return optimizer


def eval_mode(optimizer):
    """Call ``optimizer.eval()`` where it has one, so the parameters hold the point to evaluate."""
    if callable(getattr(optimizer, "eval", None)):
        optimizer.eval()
    return optimizer


def formula_spec(formula: str | Formula, grammar: Grammar | str | None = None,
                 name: str | None = None) -> OptimizerSpec:
    """An optimizer that follows ``formula`` with :class:`SymbolicOptimizer`.

    ``formula`` is parsed once here (a :class:`~dsr_l2o.errors.FormulaError` on bad text);
    ``grammar`` is a Grammar, a YAML path or text, or ``None`` for the default grammar.
    """
    parsed = formula if isinstance(formula, Formula) else parse_formula(formula, grammar)

    def make(params, lr):
        from ..optimizer import SymbolicOptimizer

        return SymbolicOptimizer(params, parsed, lr=lr)

    return OptimizerSpec(name or parsed.text, make, parsed.text, parsed.grammar.name)


def _library_class(name: str, entry: LibraryBaseline):
    if not is_available(name):
        raise ConfigError(f"baseline {name!r} needs the package {entry.package}: {EXTRA_HINT} "
                          f"(or pip install {entry.package})")
    return getattr(importlib.import_module(entry.module), entry.attr)


def get_baseline(spec, /, **kwargs) -> OptimizerSpec:
    """An :class:`OptimizerSpec` for ``spec``: a baseline name (see :data:`BASELINE_NAMES`), a
    ``"module:Class"`` string, an optimizer class, a factory ``(params, lr) -> optimizer``, or an
    OptimizerSpec (returned as is).

    ``kwargs`` are extra constructor keywords (not ``lr``, which the protocol tunes) for library
    baselines, classes and factories. Bad specs raise a one-line :class:`ConfigError`.
    """
    from .optimizer_spec import class_spec, user_spec

    if isinstance(spec, OptimizerSpec):
        if kwargs:
            raise ConfigError(f"optimizer {spec.name!r} is already built; pass keywords when creating it")
        return spec
    if not isinstance(spec, str):
        return user_spec(spec, kwargs)
    key = spec.strip().lower()
    if ":" in key:
        return user_spec(spec.strip(), kwargs)
    if key in LIBRARY_BASELINES:
        entry = LIBRARY_BASELINES[key]
        return class_spec(_library_class(key, entry), {**entry.settings, **kwargs}, key, user=kwargs,
                          trusted=True)
    if key in FORMULA_BASELINES:
        if kwargs:
            raise ConfigError(f"baseline {key!r} is a formula and takes no keywords; "
                              f"remove its --baseline-kwargs")
        text, grammar_file = FORMULA_BASELINES[key]
        grammar = load_grammar(data_path("grammars", grammar_file)) if grammar_file else None
        return formula_spec(text, grammar, name=key)
    raise ConfigError(f"unknown baseline {spec!r}; choose from {', '.join(BASELINE_NAMES)}, a group "
                      f"({', '.join(BASELINE_GROUPS)}) or 'module:Class'")


def get_baselines(names, kwargs: dict | None = None) -> list[OptimizerSpec]:
    """Baselines in the given order (all available ones for ``None``); duplicates are an error.

    ``names`` holds anything :func:`get_baseline` accepts; ``kwargs`` maps a name (as given) to
    extra constructor keywords for it.
    """
    if names is None:
        names = expand_group("all")[0]
    names = list(names)
    kwargs = {str(key).strip(): value for key, value in (kwargs or {}).items()}
    if not names:
        raise ConfigError(f"no baselines given; choose from {', '.join(BASELINE_NAMES)}")
    texts = [n.strip() for n in names if isinstance(n, str)]
    unused = [key for key in kwargs if key not in texts]
    if unused:
        raise ConfigError(f"keywords given for {unused[0]!r}, which is not among the baselines "
                          f"({', '.join(texts)}); name it exactly as in the baseline list")
    specs = [get_baseline(n, **kwargs.get(n.strip(), {})) if isinstance(n, str) else get_baseline(n)
             for n in names]
    seen = set()
    for spec in specs:
        if spec.name.lower() in seen:
            raise ConfigError(f"baseline {spec.name!r} is listed twice; list each once")
        seen.add(spec.name.lower())
    return specs
