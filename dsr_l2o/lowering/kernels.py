"""Tensor values of a compiled program and the fused in-place ops they run on.

Every op runs on a list of tensors (one per parameter), either as one ``torch._foreach_*`` call or
one call per tensor, so one program serves both paths; fresh temporaries are updated in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

import torch

from ..primitives import TORCH

Scalar = Union[float, Callable[[dict], float]]


def _has_foreach(name: str, inplace: bool = False) -> bool:
    """Whether torch has a multi-tensor ``_foreach_NAME`` (or ``_foreach_NAME_``) kernel."""
    return hasattr(torch, f"_foreach_{name}{'_' if inplace else ''}")


class Unsupported(Exception):
    """A sympy construct the lowering has no tensor program for (the caller falls back)."""


class TensorOps:
    """Elementwise ops on lists of tensors: one ``torch._foreach_*`` call, or one call per tensor."""

    def __init__(self, foreach: bool):
        self.foreach = foreach

    def out(self, name: str, *args, **kw) -> list[torch.Tensor]:
        """``name(*args)`` as new tensors; list arguments pair up element by element."""
        if self.foreach and _has_foreach(name):
            return list(getattr(torch, f"_foreach_{name}")(*args, **kw))
        fn = getattr(TORCH, name)
        n = next(len(a) for a in args if isinstance(a, list))
        return [fn(*(a[i] if isinstance(a, list) else a for a in args), **kw) for i in range(n)]

    def can_inplace(self, name: str) -> bool:
        """Whether ``name`` has an in-place form (a tensor method ``name_`` or a foreach one)."""
        return (self.foreach and _has_foreach(name, True)) or hasattr(torch.Tensor, f"{name}_")

    def inplace(self, name: str, target: list[torch.Tensor], *args, **kw) -> list[torch.Tensor]:
        """``target <- name(target, *args)`` in place; returns ``target``."""
        if self.foreach and _has_foreach(name, True):
            getattr(torch, f"_foreach_{name}_")(target, *args, **kw)
            return target
        method = getattr(torch.Tensor, f"{name}_", None)
        for i, t in enumerate(target):
            rest = [a[i] if isinstance(a, list) else a for a in args]
            if method is not None:
                method(t, *rest, **kw)
            else:
                getattr(torch, name)(t, *rest, out=t, **kw)
        return target


@dataclass
class TV:
    """A tensor value of the program: one tensor per parameter; ``owned`` ones may be overwritten."""

    tensors: list[torch.Tensor]
    owned: bool


@dataclass
class Ctx:
    """What one run of a program sees: ops, named tensor lists and the per-step scalars."""

    ops: TensorOps
    tensors: dict[str, list[torch.Tensor]]
    scalars: dict[str, float]
    memo: dict


@dataclass
class Term:
    """``coef * prod(nums) / prod(dens)``: a product whose scalar factor is folded into fused ops."""

    coef: Scalar
    nums: list[Callable[[Ctx], TV]]
    dens: list[Callable[[Ctx], TV]]
    fresh: bool = False
    """Computing the term allocates anyway (a product, a quotient or a computed factor)."""


def sval(s: Scalar, env: dict) -> float:
    """The value of a compiled scalar (a constant or a function of the per-step scalars)."""
    return s if isinstance(s, float) else s(env)


def _pow(b: float, e: float) -> float:
    value = b**e
    if isinstance(value, complex):
        raise Unsupported("negative base with a fractional exponent")
    return float(value)


def _lift(fn, parts: list[Scalar]) -> Scalar:
    if all(isinstance(p, float) for p in parts):
        return float(fn(*parts))
    return lambda env: fn(*(sval(p, env) for p in parts))


def _unary(ops: TensorOps, name: str, x: TV, *args) -> TV:
    if x.owned and ops.can_inplace(name):
        return TV(ops.inplace(name, x.tensors, *args), True)
    return TV(ops.out(name, x.tensors, *args), True)


def _binary(ops: TensorOps, name: str, x: TV, y: TV) -> TV:
    if x.owned:
        return TV(ops.inplace(name, x.tensors, y.tensors), True)
    if y.owned and name in ("mul", "maximum", "minimum"):
        return TV(ops.inplace(name, y.tensors, x.tensors), True)
    return TV(ops.out(name, x.tensors, y.tensors), True)


def _square(ops: TensorOps, x: TV) -> TV:
    if x.owned:
        return TV(ops.inplace("mul", x.tensors, x.tensors), True)
    return TV(ops.out("mul", x.tensors, x.tensors), True)


def accumulate(ctx: Ctx, target: list[torch.Tensor], term: Term, scale: float) -> None:
    """``target += scale * term`` in place, with the term's scalar folded into one fused op."""
    ops = ctx.ops
    c = scale * sval(term.coef, ctx.scalars)
    if not term.nums and not term.dens:
        ops.inplace("add", target, c)
        return
    nums = [n(ctx) for n in term.nums]
    dens = [d(ctx) for d in term.dens]
    den = dens[0] if dens else None
    for d in dens[1:]:
        den = _binary(ops, "mul", den, d)
    keep = 1 if den is not None else 2
    while len(nums) > keep:
        nums = [_binary(ops, "mul", nums[0], nums[1])] + nums[2:]
    if den is not None and not nums:
        ops.inplace("add", target, _unary(ops, "reciprocal", den).tensors, alpha=c)
    elif den is not None:
        ops.inplace("addcdiv", target, nums[0].tensors, den.tensors, value=c)
    elif len(nums) == 2:
        ops.inplace("addcmul", target, nums[0].tensors, nums[1].tensors, value=c)
    else:
        ops.inplace("add", target, nums[0].tensors, alpha=c)
