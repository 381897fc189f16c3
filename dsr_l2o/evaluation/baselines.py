"""Optimizers to compare: the hand-designed baselines and discovered formulas, behind one interface.

Baselines come from :mod:`torch.optim` where it has them (default hyper-parameters except the
learning rate, which the protocol tunes). Lion, PowerSign and AddSign are formulas run by
:class:`~dsr_l2o.optimizer.SymbolicOptimizer`, exactly as a discovered formula would be:

============  ===========================================================  ==================
name          update direction (``w <- w - lr * d``)                       source
============  ===========================================================  ==================
sgd           ``g``                                                        torch.optim.SGD
momentum      heavy ball, momentum 0.9                                     torch.optim.SGD
nesterov      Nesterov momentum 0.9                                        torch.optim.SGD
rmsprop       ``g / (sqrt(v) + 1e-8)``, alpha 0.99                         torch.optim.RMSprop
adam          betas (0.9, 0.999), eps 1e-8                                 torch.optim.Adam
adamw         as adam, decoupled weight decay 0.01                         torch.optim.AdamW
lion          ``sign(m + 0.1*g)``, m = ema(g, 0.99)                        grammars/lion.yaml
powersign     ``exp(sign(g)*sign(m))*g``, m = ema(g, 0.9)                  default grammar
addsign       ``(1 + sign(g)*sign(m))*g``, m = ema(g, 0.9)                 default grammar
============  ===========================================================  ==================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import ConfigError
from ..formula import Formula, parse_formula
from ..grammar import Grammar, data_path, load_grammar

MakeOptimizer = Callable[[list[torch.Tensor], float], torch.optim.Optimizer]


@dataclass(frozen=True)
class OptimizerSpec:
    """A named way to build an optimizer for a list of parameters at a given learning rate.

    ``formula`` is the update rule's text for formula optimizers (``None`` for torch.optim ones),
    ``grammar`` the name of the grammar it is parsed in.
    """

    name: str
    make: MakeOptimizer
    formula: str | None = None
    grammar: str | None = None


TORCH_BASELINES: dict[str, MakeOptimizer] = {
    "sgd": lambda params, lr: torch.optim.SGD(params, lr=lr),
    "momentum": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "nesterov": lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda params, lr: torch.optim.RMSprop(params, lr=lr),
    "adam": lambda params, lr: torch.optim.Adam(params, lr=lr),
    "adamw": lambda params, lr: torch.optim.AdamW(params, lr=lr),
}

FORMULA_BASELINES: dict[str, tuple[str, str | None]] = {
    "lion": ("sign(m + 0.1 * g)", "lion.yaml"),
    "powersign": ("exp(sign(g) * sign(m)) * g", None),
    "addsign": ("(1 + sign(g) * sign(m)) * g", None),
}

BASELINE_NAMES: tuple[str, ...] = tuple(TORCH_BASELINES) + tuple(FORMULA_BASELINES)


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


def get_baseline(name: str) -> OptimizerSpec:
    """The baseline called ``name`` (one of :data:`BASELINE_NAMES`)."""
    key = name.strip().lower()
    if key in TORCH_BASELINES:
        return OptimizerSpec(key, TORCH_BASELINES[key])
    if key in FORMULA_BASELINES:
        text, grammar_file = FORMULA_BASELINES[key]
        grammar = load_grammar(data_path("grammars", grammar_file)) if grammar_file else None
        return formula_spec(text, grammar, name=key)
    raise ConfigError(f"unknown baseline {name!r}; choose from {', '.join(BASELINE_NAMES)}")


def get_baselines(names) -> list[OptimizerSpec]:
    """Baselines by name, in the given order (all of them for ``None``); duplicates are an error."""
    names = list(BASELINE_NAMES if names is None else names)
    if not names:
        raise ConfigError(f"no baselines given; choose from {', '.join(BASELINE_NAMES)}")
    seen = set()
    for name in names:
        if name.strip().lower() in seen:
            raise ConfigError(f"baseline {name!r} is listed twice; list each once")
        seen.add(name.strip().lower())
    return [get_baseline(name) for name in names]
