r"""Score a :class:`~.enumerate.Library` against a target, and the three composite stages.

All scores are weighted, with the global factor :math:`\alpha` in closed form: a formula with
values :math:`f` on the probe rows explains

.. math:: R^2 = \frac{(\sum_i w_i f_i y_i)^2}{\sum_i w_i f_i^2 \, \sum_i w_i y_i^2}

of the target :math:`y`. Each stage returns :class:`Proposal` s (a tree with at most one free
constant, and where that constant came from); :mod:`.exact` refits and verifies them.

* :func:`single`: every library formula.
* :func:`products`: ``L * R``, ``R / L`` and ``L / R`` for small ``L`` and every ``R``.
* :func:`sums`: ``X + c * Y`` for the best ``X`` and every ``Y`` (``c`` by least squares).
* :func:`signs`: ``sign(X + c * Y)`` when the target takes one magnitude (``c`` from the
  interval that reproduces every sign, the shortest decimal in it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import expr as ex
from .enumerate import Library

TINY = 1e-300


@dataclass
class Proposal:
    """A candidate tree, its R^2 on the probes, the stage that proposed it (``single``, ``product``,
    ``sum``: ``X + c * Y`` with ``c`` to refit, ``sign``: ``sign(X + c * Y)``) and its node count."""

    expr: ex.Expr
    r2: float
    kind: str
    size: int


def r2_scores(values: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """R^2 of the best multiple of each row of ``values`` against ``y`` (weights ``w``)."""
    num = values @ (w * y)
    den = values.square() @ w
    return (num.square() / (den * float((w * y * y).sum())).clamp_min(TINY)).nan_to_num(0.0)


def _top(scores: torch.Tensor, k: int) -> list[int]:
    k = min(k, scores.numel())
    return torch.topk(scores, k).indices.tolist() if k else []


def single(lib: Library, y, w, k: int = 20) -> list[Proposal]:
    """The ``k`` best library formulas on their own."""
    scores = r2_scores(lib.values, y, w)
    scores[torch.tensor(lib.is_constant)] = 0.0
    return [Proposal(lib.expr(i), float(scores[i]), "single", lib.sizes[i]) for i in _top(scores, k)]


def _safe_div(x, y):
    magnitude = y.abs().clamp_min(1e-12)
    return x / torch.where(y < 0, -magnitude, magnitude)


def products(lib: Library, y, w, max_left: int = 2, k: int = 20) -> list[Proposal]:
    """``L * R``, ``R / L`` and ``L / R`` for ``L`` of at most ``max_left`` nodes, ``R`` any formula.

    Every ``L`` is scored at once: one matrix product per pattern reads the library once."""
    lefts = [i for s in range(1, max_left + 1) for i in lib.by_size.get(s, []) if not lib.is_constant[i]]
    if not lefts:
        return []
    values, squared = lib.values, lib.values.square()
    zero = values.abs() <= 1e-12
    inverse = _safe_div(torch.ones_like(values), values)
    total = float((w * y * y).sum())
    x = values[lefts]  # (lefts, rows)
    x_inv = _safe_div(torch.ones_like(x), x)
    def hits(a, b):  # [i, j]: some row where a[i] and b[j] both hold
        return (a.to(torch.float64) @ b.to(torch.float64).T) > 0

    patterns = (("mul", values, squared, x, None),
                ("div_right", values, squared, x_inv, hits(~zero, zero[lefts])),  # R / L: each zero of L meets one of R
                ("div_left", inverse, inverse.square(), x, hits(zero, x.abs() > 1e-12)))  # L / R
    found: list[tuple[float, int, int, int, str]] = []
    for op, mat, mat_sq, factor, refused in patterns:
        num = mat @ (w * y * factor).T  # (library, lefts)
        den = mat_sq @ (w * factor * factor).T
        scores = (num.square() / (den * total).clamp_min(TINY)).nan_to_num(0.0)
        if refused is not None:
            scores[refused] = 0.0
        # The 3 best of each column; of equal scores (to 9 digits) the earlier, smaller formula.
        rank = (scores * 1e9).round() * scores.shape[0] - torch.arange(scores.shape[0], dtype=scores.dtype)[:, None]
        order = torch.topk(rank, min(3, scores.shape[0]), dim=0).indices  # exact in float64: R^2 <= 1
        for column, left in enumerate(lefts):
            for i in order[:, column].tolist():
                if not lib.is_constant[i] and i != left:
                    found.append((-round(float(scores[i, column]), 9), lib.sizes[left] + lib.sizes[i], left, i, op))
    found.sort()
    out = []
    for score, _, left, right, op in found[:k]:
        score = -score
        a, b = lib.expr(left), lib.expr(right)
        tree = {"mul": ex.Call("mul", (a, b)), "div_right": ex.Call("div", (b, a)),
                "div_left": ex.Call("div", (a, b))}[op]
        out.append(Proposal(tree, score, "product", lib.sizes[left] + lib.sizes[right] + 1))
    return out


def sums(lib: Library, y, w, leads: list[int], k: int = 20) -> list[Proposal]:
    """``X + c * Y`` for each ``X`` in ``leads`` (library ids) and every ``Y``; ``c`` is refitted later."""
    values, squared_w = lib.values, lib.values.square() @ w
    total = float((w * y * y).sum())
    found = []
    for lead in leads:
        x = values[lead]
        norm = float((w * x * x).sum()) ** 0.5
        if norm <= 0:
            continue
        unit = x / norm
        along = float((w * y * unit).sum())
        rest = y - along * unit
        rest_energy = float((w * rest * rest).sum())
        projection = values @ (w * unit)
        num = values @ (w * rest)
        den = (squared_w - projection.square()).clamp_min(TINY)
        gain = (num.square() / (den * max(rest_energy, TINY))).nan_to_num(0.0).clamp(max=1.0)
        scores = along**2 / total + rest_energy / total * gain
        scores[lead] = 0.0
        scores[torch.tensor(lib.is_constant)] = 0.0
        for i in _top(scores, 4):
            found.append((-round(float(scores[i]), 9), lib.sizes[lead] + lib.sizes[i], lead, i))
    found.sort()
    out = []
    for score, _, lead, other in found[:k]:
        score = -score
        tree = ex.Call("add", (lib.expr(lead), ex.Call("mul", (ex.Num(1.0), lib.expr(other)))))
        out.append(Proposal(tree, score, "sum", lib.sizes[lead] + lib.sizes[other] + 2))
    return out


def is_sign_like(y: torch.Tensor, tolerance: float = 1e-6) -> bool:
    """Whether every non-zero entry of ``y`` has the same magnitude (a ``sign(...)`` teacher)."""
    magnitude = y.abs()[y != 0]
    return magnitude.numel() > 0 and float(magnitude.max()) <= float(magnitude.min()) * (1 + tolerance)


def sign_interval(x: torch.Tensor, z: torch.Tensor, target_sign: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pair (rows of ``x``, ``z``), the open interval of ``c`` with ``sign(x + c z) = target_sign``
    on every row where the target is non-zero: ``(lo, hi)``, empty where ``lo >= hi``."""
    s = target_sign
    live = s != 0
    a, b = (x * s)[:, live], (z * s)[:, live]
    bound = -a / torch.where(b == 0, torch.ones_like(b), b)
    inf = torch.full_like(bound, float("inf"))
    lo = torch.where(b > 0, bound, -inf).amax(dim=1)
    hi = torch.where(b < 0, bound, inf).amin(dim=1)
    blocked = ((b == 0) & (a <= 0)).any(dim=1)
    lo = lo.masked_fill(blocked, float("inf"))
    return lo, hi.masked_fill(blocked, float("-inf"))


def shortest_in(lo: float, hi: float, digits: int = 12) -> float | None:
    """The number with the fewest significant digits strictly inside ``(lo, hi)`` (0 excluded)."""
    if not lo < hi:
        return None
    if lo < 0 < hi:
        lo = hi / 2 if hi <= -lo else lo
    for d in range(1, digits + 1):
        top = max(abs(lo), abs(hi))
        if not math.isfinite(top) or top == 0:
            return None
        step = 10.0 ** (math.floor(math.log10(top)) - d + 1)
        candidate = float(f"{math.floor(lo / step + 1) * step:.{d + 1}g}")
        if lo < candidate < hi and candidate != 0:
            return candidate
    return None


def signs(lib: Library, y, max_size: int = 2, k: int = 10) -> list[Proposal]:
    """``sign(X + c * Y)`` over pairs of formulas of at most ``max_size`` nodes and equal units."""
    ids = [i for s in range(1, max_size + 1) for i in lib.by_size.get(s, []) if not lib.is_constant[i]]
    target = torch.sign(y)
    found = []
    for i in ids:
        partners = torch.tensor([j for j in ids if j != i and lib.units[j] == lib.units[i]], dtype=torch.int64)
        if not partners.numel():
            continue
        x = lib.values[i].expand(partners.numel(), -1)
        lo, hi = sign_interval(x, lib.values[partners], target)
        for j, a, b in zip(partners.tolist(), lo.tolist(), hi.tolist()):
            c = shortest_in(a, b)
            if c is not None:
                digits = len(f"{c:.12g}".lstrip("-0.").replace(".", "").rstrip("0"))
                found.append((lib.sizes[i] + lib.sizes[j], digits, abs(c) > 1, i, j, c))
    found.sort()
    out = []
    for size, _, _, i, j, c in found[:k]:
        tree = ex.Call("sign", (ex.Call("add", (lib.expr(i), ex.Call("mul", (ex.Num(c), lib.expr(j))))),))
        out.append(Proposal(tree, 1.0, "sign", size + 3))
    return out
