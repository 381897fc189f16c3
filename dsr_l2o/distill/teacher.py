"""The teacher of a distillation, from its spec: a baseline name, ``l2o:DIR``, ``module:Class`` or a formula."""

from __future__ import annotations

from ..errors import ConfigError, FormulaError
from ..imports import SPEC


def teacher_spec(teacher: str, grammar, kwargs: dict | None = None):
    """An :class:`~dsr_l2o.evaluation.OptimizerSpec` for ``teacher``:

    * a baseline name (``adam``, ``momentum``, ...);
    * ``l2o:DIR``, a learned optimizer written by ``dsr-l2o l2o train --out DIR``;
    * ``module:Class``, a ``torch.optim.Optimizer`` subclass built as ``Class(params, lr=lr, **kwargs)``;
    * a formula of ``grammar``.
    """
    from ..evaluation import BASELINE_NAMES, formula_spec, get_baseline

    text = teacher.strip()
    if text.lower() in BASELINE_NAMES:
        _no_kwargs(teacher, kwargs)
        return get_baseline(text)
    if text.startswith("l2o:"):
        from ..l2o import l2o_spec

        _no_kwargs(teacher, kwargs)
        return l2o_spec(text[4:])
    if SPEC.fullmatch(text):
        return get_baseline(text, **(kwargs or {}))
    _no_kwargs(teacher, kwargs)
    try:
        return formula_spec(text, grammar, name="teacher")
    except FormulaError as err:
        raise ConfigError(f"teacher {teacher!r} is neither a baseline ({', '.join(BASELINE_NAMES)}), "
                          f"'l2o:DIR', 'module:Class' nor a formula of grammar {grammar.name!r}: {err}") from None


def _no_kwargs(teacher: str, kwargs: dict | None) -> None:
    if kwargs:
        raise ConfigError(f"teacher {teacher!r} takes no keyword arguments; --teacher-arg applies to "
                          "'module:Class' teachers only")
