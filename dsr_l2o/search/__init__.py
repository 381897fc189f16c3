"""Differentiable search: relax a grammar's formulas, meta-train the relaxation on tasks, read
off one formula. ``search()`` runs it all; ``load_result()`` reads a finished search back.

The names are imported on first use, so a process that needs one part of the package (the
launcher of ``--nproc``, a spawned rank) does not pay for the rest."""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "RelaxedRule": "dsr_l2o.search.relaxation",
    "SearchConfig": "dsr_l2o.search.config",
    "load_config": "dsr_l2o.search.config",
    "SearchResult": "dsr_l2o.result",
    "load_result": "dsr_l2o.result",
    "search": "dsr_l2o.search.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dsr_l2o.search' has no attribute {name!r}")
