"""The grammar schema: a YAML grammar validated key by key into a :class:`~.model.Grammar`."""

from __future__ import annotations

import difflib
import keyword
import math
import re
from pathlib import Path
from typing import Any

import networkx as nx

from .. import expr as ex
from ..errors import FormulaError
from ..limits import MAX_CONSTANT, check_formula, constant_folder, shorten
from ..operators import BUILTIN_OPERATORS
from .custom import custom_operator
from .model import BUILTIN_KINDS, Grammar, Operand, _nonnegative
from .yaml_lines import YamlDocument

OPERAND_KEYS = {"ema", "beta", "debias", "expr", "prev", "norm"}
SOURCE_KINDS = ("ema", "expr", "prev", "norm")
TOP_KEYS = {"name", "description", "operands", "unary", "binary", "constants", "operators"}
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)

def _number(value) -> float | None:
    """A YAML number (or a plain numeric string such as ``1e-8``, which YAML reads as text) or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = value.strip()
    elif not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


def _suggest(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Builder(YamlDocument):
    def load(self) -> Grammar:
        data = self.read()
        if data is None:
            self.fail((), "the grammar is empty; write at least 'operands: {g: grad}' (see grammars/default.yaml)")
        if not isinstance(data, dict):
            self.fail((), "a grammar must be a YAML mapping with keys operands, unary, binary, ...")
        for key in data:
            if key not in TOP_KEYS:
                self.fail((key,), f"unknown key; allowed keys are {', '.join(sorted(TOP_KEYS))}"
                          f"{_suggest(key, TOP_KEYS)}")
        name = data.get("name", Path(self.origin).stem if self.origin != "<text>" else "custom")
        if not isinstance(name, str) or not name.strip():
            self.fail(("name",), "must be a non-empty string")
        description = data.get("description") or ""
        if not isinstance(description, str):
            self.fail(("description",), "must be a string (quote it)")
        custom_specs = self.custom_specs(_or_empty(data.get("operators"), {}))
        operators = dict(BUILTIN_OPERATORS)
        operand_specs = data.get("operands")
        if not isinstance(operand_specs, dict) or not operand_specs:
            self.fail(("operands",), "must be a non-empty mapping of names, e.g. 'g: grad'")
        clashes = set(custom_specs) & set(operand_specs)
        if clashes:
            self.fail(("operators", sorted(clashes)[0]), "names an operand too; rename one of them")
        custom = self.custom = self.build_custom(custom_specs, operators)
        operands = self.build_operands(operand_specs, operators)
        unary = self.operator_list(data, "unary", 1, operators)
        binary = self.operator_list(data, "binary", 2, operators)
        constants = self.constants(_or_empty(data.get("constants"), []))
        return Grammar(
            name=name.strip(), operands=operands, unary=unary, binary=binary, constants=constants,
            operators=operators, custom=custom, description=description.strip(),
            source_text=self.text, path=None if self.origin == "<text>" else self.origin,
        )

    def custom_specs(self, specs) -> dict[str, tuple[tuple[str, ...], str]]:
        if not isinstance(specs, dict):
            self.fail(("operators",), "must be a mapping like 'softsign: {args: [x], expr: \"x / (1 + abs(x))\"}'")
        out = {}
        for name, spec in specs.items():
            path = ("operators", name)
            self.check_name(path, name)
            if name in BUILTIN_OPERATORS:
                self.fail(path, "is a built-in operator; give the custom operator another name")
            if not isinstance(spec, dict):
                self.fail(path, "must be a mapping with the keys 'args' (a list of names) and 'expr' (a formula)")
            for key in spec:
                if key not in ("args", "expr"):
                    self.fail(path + (key,), f"unknown key; custom operators have only 'args' and 'expr'"
                              f"{_suggest(key, ('args', 'expr'))}")
            for key in ("args", "expr"):
                if key not in spec:
                    self.fail(path, f"needs the key {key!r}, e.g. {{args: [x], expr: \"x / (1 + abs(x))\"}}")
            args = spec["args"]
            if not isinstance(args, list) or not args or len(args) > 2 or not all(isinstance(a, str) for a in args):
                self.fail(path + ("args",), "must be a list of one or two argument names, e.g. [x] or [x, y]")
            if len(set(args)) != len(args):
                self.fail(path + ("args",), "argument names must differ")
            for a in args:
                self.check_name(path + ("args",), a)
                if a in BUILTIN_OPERATORS or a in specs:
                    self.fail(path + ("args",), f"argument {a!r} is also an operator name; rename the argument")
            if not isinstance(spec["expr"], str):
                self.fail(path + ("expr",), "must be a formula string (quote it)")
            out[name] = (tuple(args), spec["expr"])
        return out

    def build_custom(self, specs, operators) -> dict:
        arities = {n: op.arity for n, op in operators.items()}
        arities.update({name: len(args) for name, (args, _) in specs.items()})
        bodies, graph = {}, nx.DiGraph()
        graph.add_nodes_from(specs)
        for name, (args, text) in specs.items():
            try:
                bodies[name] = ex.parse(text, args, arities)
            except FormulaError as err:
                self.fail(("operators", name, "expr"), str(err))
            for used in ex.operators_used(bodies[name]) & set(specs):
                graph.add_edge(used, name)
        self.no_cycle(graph, "operators")
        custom = {}
        for name in nx.lexicographical_topological_sort(graph, key=list(specs).index):
            args = specs[name][0]
            self.within_limits(("operators", name, "expr"), bodies[name], custom, operators, args)
            operators[name] = custom_operator(name, args, bodies[name], dict(operators))
            custom[name] = (args, bodies[name])
        return custom

    def within_limits(self, path, body, custom, operators, args=()):
        helper = Grammar("limits", {}, (), (), (), dict(operators))
        try:
            check_formula(body, custom, constant_folder(helper.evaluate), args)
        except FormulaError as err:
            self.fail(path, str(err))

    def build_operands(self, specs, operators) -> dict[str, Operand]:
        arities = {n: op.arity for n, op in operators.items()}
        graph = nx.DiGraph()
        parsed: dict[str, tuple[str, Any]] = {}
        for name, spec in specs.items():
            path = ("operands", name)
            self.check_name(path, name)
            if name in operators:
                self.fail(path, "is also an operator name; rename the operand")
            graph.add_node(name)
            if isinstance(spec, str) and spec in BUILTIN_KINDS:
                parsed[name] = (spec, None)
                continue
            if isinstance(spec, str):
                self.fail(path, f"unknown built-in {shorten(repr(spec))}; use one of {', '.join(BUILTIN_KINDS)} or a "
                          f"mapping with 'ema', 'expr', 'prev' or 'norm'{_suggest(spec, BUILTIN_KINDS)}")
            if not isinstance(spec, dict):
                self.fail(path, "must be 'grad', 'param', 'step', {ema: EXPR, beta: B}, {expr: EXPR}, {prev: EXPR} or "
                          "{norm: EXPR}")
            for key in spec:
                if key not in OPERAND_KEYS:
                    self.fail(path + (key,), f"unknown key; operand keys are {', '.join(sorted(OPERAND_KEYS))}"
                              f"{_suggest(key, OPERAND_KEYS)}")
            kinds = [k for k in SOURCE_KINDS if k in spec]
            if len(kinds) != 1:
                self.fail(path, "needs exactly one of 'ema' (a moving average), 'expr' (a derived value), "
                          "'prev' (a value at the previous step) or 'norm' (a norm per parameter tensor)")
            kind = kinds[0]
            text = spec[kind]
            if isinstance(text, (int, float)) and not isinstance(text, bool):
                number = _number(text)
                text = ex.format_number(number) if number is not None and math.isfinite(number) else None
            if not isinstance(text, str):
                self.fail(path + (kind,), "must be a formula string over the other operands, e.g. \"g**2\"")
            try:
                body = ex.parse(text, specs.keys(), arities)
            except FormulaError as err:
                self.fail(path + (kind,), str(err))
            self.within_limits(path + (kind,), body, self.custom, operators)
            for dep in ex.variables(body):
                graph.add_edge(dep, name)
            parsed[name] = (kind, body)
        self.no_cycle(graph, "operands")
        operands: dict[str, Operand] = {}
        for name in nx.lexicographical_topological_sort(graph, key=list(specs).index):
            kind, body = parsed[name]
            spec = specs[name]
            path = ("operands", name)
            if kind in BUILTIN_KINDS:
                operands[name] = Operand(name, kind, nonnegative=kind == "step")
                continue
            nonneg = kind == "norm" or _nonnegative(body, operands, operators)
            if kind != "ema":
                for key in ("beta", "debias"):
                    if key in spec:
                        self.fail(path + (key,), "only applies to 'ema' operands; remove it")
                operands[name] = Operand(name, kind, body, nonnegative=nonneg)
                continue
            beta = _number(spec.get("beta"))
            if beta is None or not math.isfinite(beta) or not (0 < beta < 1):
                self.fail(path + ("beta",), "is required and must be a number strictly between 0 and 1, e.g. 0.9")
            debias = spec.get("debias", False)
            if not isinstance(debias, bool):
                self.fail(path + ("debias",), "must be true or false")
            operands[name] = Operand(name, "ema", body, beta, debias, nonneg)
        return operands

    def operator_list(self, data, key, arity, operators) -> tuple[str, ...]:
        names = _or_empty(data.get(key), [])
        if not isinstance(names, list):
            self.fail((key,), f"must be a list of operator names, e.g. [{'sign, sqrt' if arity == 1 else 'add, mul'}]")
        for i, name in enumerate(names):
            if not isinstance(name, str) or name not in operators:
                known = [n for n, op in operators.items() if op.arity == arity]
                self.fail((key, i), f"unknown operator {shorten(repr(name))}; known {key} operators: {', '.join(known)}"
                          f"{_suggest(name, known)}")
            if operators[name].arity != arity:
                self.fail((key, i), f"{name!r} takes {operators[name].arity} argument(s); list it under "
                          f"{'unary' if operators[name].arity == 1 else 'binary'}")
            if name in names[:i]:
                self.fail((key, i), f"lists {name!r} twice; remove the duplicate")
        return tuple(names)

    def constants(self, values) -> tuple[float, ...]:
        if not isinstance(values, list):
            self.fail(("constants",), "must be a list of numbers, e.g. [1, 2, 0.5]")
        numbers = []
        for i, v in enumerate(values):
            number = _number(v)
            if number is None or not math.isfinite(number):
                self.fail(("constants", i), f"{shorten(repr(v))} is not a finite number; write numbers such as 1, 0.5 or 1e-8")
            if abs(number) > MAX_CONSTANT:
                self.fail(("constants", i), f"{shorten(v)} is larger than {MAX_CONSTANT:g} in magnitude; rescale it")
            if number in numbers:
                self.fail(("constants", i), f"lists the value {ex.format_number(number)} twice; remove the duplicate")
            numbers.append(number)
        return tuple(numbers)

    def check_name(self, path, name):
        if isinstance(name, bool):
            self.fail(path, f"YAML reads this name as {str(name).lower()}; quote it (e.g. 'on': grad)")
        if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
            self.fail(path, f"{shorten(repr(name))} is not a valid name; use letters, digits and '_' (not first a digit)")
        if keyword.iskeyword(name):
            self.fail(path, f"{name!r} is a Python keyword, which exported code cannot use; rename it, e.g. {name}_")
        if name.startswith("__"):
            self.fail(path, f"{name!r}: names starting with '__' are reserved; rename it, e.g. {name.lstrip('_')}")

    def no_cycle(self, graph, section):
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return
        names = [u for u, _ in cycle] + [cycle[0][0]]
        self.fail((section, cycle[0][1]), f"definitions form a cycle {' -> '.join(names)}; "
                  "define each from earlier ones only")


def _or_empty(value, empty):
    """A key written with nothing after it (YAML null) means an empty list or mapping."""
    return empty if value is None else value
