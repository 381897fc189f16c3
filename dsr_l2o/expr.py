"""Expression trees of the formula language, and a parser that accepts nothing else.

The language: numbers, names of the grammar's operands, ``+ - * / **``, parentheses and calls
of the grammar's operators. ``x ** n`` with a whole number ``1 <= n <= 8`` is an exact power;
any other exponent means the safe ``pow``. The parser is a small recursive-descent parser over a
whitelist tokenizer: it never evaluates text, so untrusted formulas cannot run code.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, Union

from .errors import FormulaError, shorten

MAX_FORMULA_CHARS = 10_000
MAX_DEPTH = 100
"""Deepest nesting of parentheses, calls, unary minus and exponents the parser follows."""
MAX_TREE_DEPTH = 48
"""Deepest expression tree a formula may parse to (its printed text always nests <= MAX_DEPTH)."""
_SPACE = " \t\n\r\f\v"


@dataclass(frozen=True)
class Num:
    """A numeric constant."""

    value: float


@dataclass(frozen=True)
class Var:
    """A named operand (or an argument inside a custom operator's body)."""

    name: str


@dataclass(frozen=True)
class Call:
    """An operator applied to arguments; infix ``+ - * /`` parse to add/sub/mul/div calls."""

    op: str
    args: tuple["Expr", ...]


@dataclass(frozen=True)
class Power:
    """``base ** exponent`` for a whole exponent from 1 to 8: exact, no guard needed."""

    base: "Expr"
    exponent: int


Expr = Union[Num, Var, Call, Power]

_TOKEN = re.compile(
    r"[ \t\n\r\f\v]*(?:(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\*\*|[-+*/(),]))",
    re.ASCII,
)
_INFIX = {"+": "add", "-": "sub", "*": "mul", "/": "div"}


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens, pos = [], 0
    stripped_end = len(text.rstrip(_SPACE))
    while pos < stripped_end:
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            col = len(text) - len(text[pos:].lstrip(_SPACE)) + 1
            bad = text[col - 1]
            raise FormulaError(
                f"unexpected character {bad!r} at column {col}; formulas may use only numbers, "
                "operand names, + - * / **, parentheses and operator calls"
            )
        kind = match.lastgroup
        tokens.append((kind, match.group(kind), match.start(kind) + 1))
        pos = match.end()
    tokens.append(("end", "", len(text) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str, names: frozenset[str], arities: Mapping[str, int]):
        self.text, self.names, self.arities = text, names, arities
        self.tokens, self.i, self.depth = _tokenize(text), 0, 0

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i]

    def take(self) -> tuple[str, str, int]:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        kind, tok, col = self.take()
        if tok != value or kind != "op":
            found = "the end" if kind == "end" else repr(shorten(tok))
            raise FormulaError(f"expected {value!r} at column {col} but found {found}; check the parentheses")

    def parse(self) -> Expr:
        expr = self.sum()
        kind, tok, col = self.peek()
        if kind != "end":
            raise FormulaError(f"unexpected {shorten(tok)!r} at column {col}; is an operator missing?")
        return expr

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FormulaError(f"formula nests deeper than {MAX_DEPTH} levels; simplify it")

    def sum(self) -> Expr:
        left = self.product()
        while self.peek()[1] in ("+", "-") and self.peek()[0] == "op":
            op = _INFIX[self.take()[1]]
            left = Call(op, (left, self.product()))
        return left

    def product(self) -> Expr:
        left = self.unary()
        while self.peek()[1] in ("*", "/") and self.peek()[0] == "op":
            op = _INFIX[self.take()[1]]
            left = Call(op, (left, self.unary()))
        return left

    def unary(self) -> Expr:
        while self.peek()[:2] == ("op", "+"):
            self.take()
        if self.peek()[:2] == ("op", "-"):
            self.take()
            if self.peek()[0] == "num" and self.tokens[self.i + 1][1] != "**":
                return Num(-self.atom().value)
            self.nested()
            inner = self.unary()
            self.depth -= 1
            return Call("neg", (inner,))
        return self.power()

    def power(self) -> Expr:
        base = self.atom()
        if self.peek()[1] == "**":
            self.take()
            self.nested()
            exponent = self.unary()
            self.depth -= 1
            if isinstance(exponent, Num) and exponent.value == int(exponent.value) and 1 <= exponent.value <= 8:
                return Power(base, int(exponent.value))
            if "pow" not in self.arities:
                raise FormulaError(
                    "only whole exponents 1..8 are exact powers; add 'pow' to the grammar's "
                    "binary operators for other exponents"
                )
            return Call("pow", (base, exponent))
        return base

    def atom(self) -> Expr:
        kind, tok, col = self.take()
        if kind == "num":
            value = float(tok)
            if not math.isfinite(value):
                raise FormulaError(f"number {shorten(tok)!r} at column {col} is not finite")
            return Num(value)
        if kind == "name":
            if self.peek()[1] == "(":
                return self.call(tok, col)
            if tok not in self.names:
                hint = f"; known operands: {', '.join(sorted(self.names))}" if self.names else ""
                what = "operator (call it with parentheses)" if tok in self.arities else "name"
                raise FormulaError(f"unknown {what} {shorten(tok)!r} at column {col}{hint}")
            return Var(tok)
        if tok == "(":
            self.nested()
            inner = self.sum()
            self.depth -= 1
            self.expect(")")
            return inner
        found = "the end of the formula" if kind == "end" else repr(shorten(tok))
        raise FormulaError(f"expected a number, name or '(' at column {col} but found {found}")

    def call(self, name: str, col: int) -> Expr:
        if name not in self.arities:
            known = ", ".join(sorted(self.arities))
            raise FormulaError(f"unknown operator {shorten(name)!r} at column {col}; known operators: {known}")
        self.expect("(")
        self.nested()
        args = [self.sum()]
        while self.peek()[1] == ",":
            self.take()
            args.append(self.sum())
        self.depth -= 1
        self.expect(")")
        arity = self.arities[name]
        if len(args) != arity:
            example = f"{name}({', '.join('xy'[:arity])})"
            raise FormulaError(
                f"operator {name!r} at column {col} takes {arity} argument(s), got {len(args)}; "
                f"write it as {example}"
            )
        return Call(name, tuple(args))


def parse(text: str, names: Iterable[str], arities: Mapping[str, int]) -> Expr:
    """Parse ``text`` into an :data:`Expr` over ``names`` and the operators in ``arities``.

    Raises :class:`FormulaError` with a one-line message for anything outside the language.
    """
    if not isinstance(text, str):
        raise FormulaError(f"a formula must be a string, not {type(text).__name__}")
    if len(text) > MAX_FORMULA_CHARS:
        raise FormulaError(f"formula is longer than {MAX_FORMULA_CHARS} characters")
    if not text.strip():
        raise FormulaError("formula is empty; write an expression such as 'm_hat / sqrt(v_hat)'")
    try:
        tree = _Parser(text, frozenset(names), arities).parse()
    except RecursionError:
        raise FormulaError(f"formula nests deeper than {MAX_DEPTH} levels; simplify it") from None
    if depth(tree) > MAX_TREE_DEPTH:
        raise FormulaError(
            f"formula is deeper than {MAX_TREE_DEPTH} operations; split it into operands or simplify it"
        )
    return tree


def _children(expr: Expr) -> tuple:
    if isinstance(expr, Call):
        return expr.args
    if isinstance(expr, Power):
        return (expr.base,)
    return ()


def depth(expr: Expr) -> int:
    """Levels of the tree: 1 for a number or name (computed without recursion)."""
    deepest, stack = 0, [(expr, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in _children(node))
    return deepest


def variables(expr: Expr) -> set[str]:
    """The operand names an expression reads."""
    if isinstance(expr, Var):
        return {expr.name}
    if isinstance(expr, Call):
        return set().union(*(variables(a) for a in expr.args))
    if isinstance(expr, Power):
        return variables(expr.base)
    return set()


def numbers(expr: Expr) -> list[Num]:
    """The numeric constants of an expression, left to right (exponents of powers excluded)."""
    if isinstance(expr, Num):
        return [expr]
    return [n for child in _children(expr) for n in numbers(child)]


def operators_used(expr: Expr) -> set[str]:
    """The operator names an expression calls."""
    if isinstance(expr, Call):
        return {expr.op}.union(*(operators_used(a) for a in expr.args))
    if isinstance(expr, Power):
        return operators_used(expr.base)
    return set()


def size(expr: Expr) -> int:
    """Node count: numbers, names and operator applications each count one."""
    if isinstance(expr, Call):
        return 1 + sum(size(a) for a in expr.args)
    if isinstance(expr, Power):
        return 1 + size(expr.base)
    return 1


_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2}


def format_number(value: float) -> str:
    """Shortest text that parses back to the same float."""
    if math.isfinite(value) and value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def to_text(expr: Expr, prec: int = 0) -> str:
    """Print an expression in the formula language; ``parse(to_text(e))`` gives ``e`` back."""
    if isinstance(expr, Num):
        text = format_number(expr.value)
        return f"({text})" if expr.value < 0 and prec > 0 else text
    if isinstance(expr, Var):
        return expr.name
    if isinstance(expr, Power):
        text = f"{to_text(expr.base, 4)}**{expr.exponent}"
        return f"({text})" if prec >= 4 else text
    if expr.op in _PREC:
        p = _PREC[expr.op]
        left = to_text(expr.args[0], p)
        right = to_text(expr.args[1], p + 1)
        text = f"{left} {'+-*/'[['add', 'sub', 'mul', 'div'].index(expr.op)]} {right}"
        return f"({text})" if p < prec else text
    if expr.op == "neg":
        arg = expr.args[0]
        inner = f"({to_text(arg)})" if isinstance(arg, Num) else to_text(arg, 3)
        text = f"-{inner}"
        return f"({text})" if prec > 0 else text
    return f"{expr.op}({', '.join(to_text(a) for a in expr.args)})"
