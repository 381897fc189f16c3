"""The rewrites simplification tries: sympy's canonical form, folded signs, :func:`sympy.simplify`."""

from __future__ import annotations

import sympy as sp

MAX_OPS_FOR_FULL_SIMPLIFY = 80
"""Larger expressions skip :func:`sympy.simplify` (it can take minutes) and keep only sympy's
automatic canonical form."""


def whole_floats_to_integers(expression: sp.Expr) -> sp.Expr:
    """``expression`` with every whole-number Float (``2.0``) replaced by the Integer (``2``)."""
    whole = {f: sp.Integer(int(f)) for f in expression.atoms(sp.Float) if f.is_finite and f == int(f)}
    return expression.xreplace(whole) if whole else expression


def _sign_product(product: sp.Expr) -> sp.Expr:
    """``x * sign(x)**k`` and ``|x| * sign(x)**k`` folded: exact for every real ``x``, 0 included."""
    powers = dict(product.as_powers_dict())
    for factor in [f for f in powers if isinstance(f, sp.sign)]:
        inner, k = factor.args[0], powers[factor]
        if not (k.is_Integer and k > 0):
            continue
        for partner, odd_result, even_result in ((inner, sp.Abs(inner), inner), (sp.Abs(inner), inner, sp.Abs(inner))):
            if powers.get(partner) == 1 and factor in powers:
                del powers[partner], powers[factor]
                result = odd_result if int(k) % 2 else even_result
                powers[result] = powers.get(result, 0) + 1
    return sp.Mul(*(base**exp for base, exp in powers.items()))


def fold_signs(expression: sp.Expr) -> sp.Expr:
    """Apply :func:`_sign_product` to every product in ``expression``."""
    return expression.replace(lambda e: e.is_Mul and e.has(sp.sign), _sign_product)


def _sympy_candidates(expression: sp.Expr) -> list[sp.Expr]:
    expression = whole_floats_to_integers(expression)
    candidates = [expression]
    folded = fold_signs(expression)
    if folded != expression:
        candidates.append(folded)
        expression = folded
    if sp.count_ops(expression) <= MAX_OPS_FOR_FULL_SIMPLIFY:
        try:
            candidates.append(sp.simplify(expression))
        except (TypeError, ValueError, NotImplementedError, RecursionError, AttributeError):
            pass
    return candidates
