"""dsr_l2o: discover readable optimizer update rules by differentiable symbolic search."""

from __future__ import annotations

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "load_grammar": "dsr_l2o.grammar",
    "Grammar": "dsr_l2o.grammar",
    "parse_formula": "dsr_l2o.formula",
    "Formula": "dsr_l2o.formula",
    "SymbolicOptimizer": "dsr_l2o.optimizer",
    "search": "dsr_l2o.search",
    "distil": "dsr_l2o.distill",
    "load_result": "dsr_l2o.result",
    "DsrError": "dsr_l2o.errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dsr_l2o' has no attribute {name!r}")
