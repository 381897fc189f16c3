"""Differentiable search: relax a grammar's formulas, meta-train the relaxation on tasks, read
off one formula. ``search()`` runs it all; ``load_result()`` reads a finished search back."""

from .config import SearchConfig, load_config
from .relaxation import RelaxedRule
from ..result import SearchResult, load_result
from .run import search

__all__ = ["RelaxedRule", "SearchConfig", "SearchResult", "load_config", "load_result", "search"]
