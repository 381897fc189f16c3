"""Score ratios and their geometric mean: the one definition every report and the search share.

A ratio divides an optimizer's score (lower is better) by a reference score on the same task.
Scores at or below ``floor`` count as ``floor``: a task trained to a loss under ``1e-7`` is
solved, and two optimizers that both solve it tie. Below that, single-precision training
differs by rounding (a loss of ``5e-9`` against one that underflows to ``0`` would otherwise be a
"1000x" win), and one such task would swing a geometric mean over ten by 2x.
"""

from __future__ import annotations

import math
from typing import Iterable

FLOOR = 1e-7


def _defined(value) -> bool:
    return value is not None and isinstance(value, (int, float)) and math.isfinite(value)


def score_ratio(score: float | None, reference: float | None, floor: float = FLOOR) -> float | None:
    """``score / reference`` with both clamped below at ``floor``.

    ``None`` when the reference is missing or not finite (nothing to compare against) or the
    score is missing; ``inf`` when the score is not finite (the optimizer diverged).
    """
    if not _defined(reference) or score is None:
        return None
    if not math.isfinite(score):
        return math.inf
    return max(float(score), floor) / max(float(reference), floor)


def geometric_mean_ratio(scores: Iterable[float | None], references: Iterable[float | None],
                         floor: float = FLOOR) -> float | None:
    """Geometric mean over tasks of :func:`score_ratio` (``scores[i]`` against ``references[i]``).

    ``None`` when there are no tasks or any ratio is undefined; ``inf`` when the optimizer
    diverged on any task (its score there is not finite).
    """
    scores, references = list(scores), list(references)
    if len(scores) != len(references):
        raise ValueError(f"{len(scores)} scores but {len(references)} references")
    ratios = [score_ratio(s, r, floor) for s, r in zip(scores, references)]
    if not ratios or any(r is None for r in ratios):
        return None
    if any(math.isinf(r) for r in ratios):
        return math.inf
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios))
