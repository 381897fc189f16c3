"""Custom operators: formulas over the built-ins, given a name in a grammar."""

from __future__ import annotations

import sympy as sp

from .. import expr as ex
from ..operators import Operator
from .model import Grammar, _as_tensor, _exact_power, _first_tensor


def custom_operator(name, args, body, operators) -> Operator:
    helper = Grammar(name, {}, (), (), (), operators)
    symbols = {a: sp.Dummy(f"{name}_{a}", real=True) for a in args}
    template: list[sp.Expr] = []

    def torch_fn(*values):
        out = helper.evaluate(body, dict(zip(args, values)))
        return _as_tensor(out, _first_tensor(values))

    def sympy_fn(*values):
        if not template:
            template.append(_sympy_with(helper, body, symbols))
        return template[0].subs({symbols[a]: v for a, v in zip(args, values)}, simultaneous=True)

    escaped = name.replace("_", r"\_")
    latex = (r"\operatorname{{" + escaped + r"}}\left("
             + ", ".join("{%d}" % i for i in range(len(args))) + r"\right)")
    return Operator(name, len(args), torch_fn, sympy_fn, latex, ex.to_text(body))


def _sympy_with(grammar: Grammar, body: ex.Expr, symbols) -> sp.Expr:
    if isinstance(body, ex.Var):
        return symbols[body.name]
    if isinstance(body, ex.Num):
        return grammar.to_sympy(body)
    if isinstance(body, ex.Power):
        return _exact_power(_sympy_with(grammar, body.base, symbols), body.exponent)
    return grammar.operators[body.op].sympy(*(_sympy_with(grammar, a, symbols) for a in body.args))
