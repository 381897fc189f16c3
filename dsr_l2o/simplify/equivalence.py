"""The equivalence check: two formulas give the same updates on random operand values."""

from __future__ import annotations

import torch

from ..formula import Formula
from ..layout import is_step

def probe_values(formula: Formula, size: int = 64, seed: int = 0, dtype=torch.float64) -> dict[str, torch.Tensor]:
    """Random operand values for numerical checks: normal values plus zeros and large magnitudes."""
    gen = torch.Generator().manual_seed(seed)
    env = {}
    for name in sorted(formula.operands):
        operand = formula.grammar.operands[name]
        if is_step(operand):
            env[name] = torch.randint(1, 1000, (size,), generator=gen).to(dtype)
            continue
        values = torch.randn(size, generator=gen, dtype=dtype)
        values[: size // 8] = 0.0
        values[size // 8: size // 4] *= 40.0
        if operand.nonnegative:
            values = values.abs()
        env[name] = values
    return env


def same_values(a: Formula, b: Formula, size: int = 64, seed: int = 0) -> bool:
    """Whether two formulas give the same updates on :func:`probe_values` (float64).

    Entries where ``a`` itself is ill-conditioned (float32 and float64 disagree) are ignored.
    """
    env = probe_values(a, size, seed)
    env.update({k: v for k, v in probe_values(b, size, seed).items() if k not in env})
    with torch.no_grad():
        ref = a.evaluate(env).expand(size)
        low = a.evaluate({k: v.float() for k, v in env.items()}).double().expand(size)
        got = b.evaluate(env).expand(size)
    stable = torch.isclose(ref, low, rtol=1e-4, atol=1e-6, equal_nan=True)
    close = torch.isclose(ref, got, rtol=1e-6, atol=1e-9, equal_nan=True)
    return bool(torch.all(close | ~stable))
