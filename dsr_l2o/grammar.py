"""Grammars: which operands an update rule may read and which operators it may apply.

A grammar is a YAML file (see ``grammars/default.yaml`` and ``docs/grammar.md``). It is parsed
with PyYAML's safe loader only, validated key by key, and every mistake is reported as one line
``FILE:LINE: KEY: what is wrong; how to fix it``.
"""

from __future__ import annotations

import difflib
import keyword
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import networkx as nx
import sympy as sp
import torch
import yaml

from . import expr as ex
from .errors import FormulaError, GrammarError
from .limits import MAX_CONSTANT, check_formula, constant_folder, shorten
from .operators import BUILTIN_OPERATORS, Operator
from .resources import data_path, is_file

BUILTIN_KINDS = ("grad", "param", "step")
OPERAND_KEYS = {"ema", "beta", "debias", "expr"}
TOP_KEYS = {"name", "description", "operands", "unary", "binary", "constants", "operators"}
MAX_GRAMMAR_BYTES = 100_000
MAX_FLOW_DEPTH = 32
MAX_NUMBER_CHARS = 100
"""Longest number a grammar file may write (PyYAML would otherwise build 4,000-digit integers)."""


@dataclass(frozen=True)
class Operand:
    """One input of an update rule.

    ``kind`` is ``grad``, ``param``, ``step`` (the step count ``t``, from 1), ``ema`` (an
    exponential moving average of ``source`` updated *before* the rule reads it, optionally
    divided by ``1 - beta**t``) or ``expr`` (``source`` evaluated each step, no state).
    """

    name: str
    kind: str
    source: ex.Expr | None = None
    beta: float | None = None
    debias: bool = False
    nonnegative: bool = False


@dataclass(eq=False)
class Grammar:
    """A parsed, validated grammar. Operands are in dependency order.

    Two grammars loaded from the same YAML text are equal (and hash alike), so formulas parsed
    in separately loaded copies of one grammar compare equal.
    """

    name: str
    operands: dict[str, Operand]
    unary: tuple[str, ...]
    binary: tuple[str, ...]
    constants: tuple[float, ...]
    operators: dict[str, Operator]
    custom: dict[str, tuple[tuple[str, ...], ex.Expr]] = field(default_factory=dict)
    description: str = ""
    source_text: str = ""
    path: str | None = None

    def _identity(self):
        return ("text", self.name, self.source_text) if self.source_text else ("object", id(self))

    def __eq__(self, other) -> bool:
        return isinstance(other, Grammar) and self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    @property
    def arities(self) -> dict[str, int]:
        """Every operator a formula may call (built-ins and custom ones) with its argument count."""
        return {name: op.arity for name, op in self.operators.items()}

    def parse(self, text: str) -> ex.Expr:
        """Parse a formula over this grammar's operands and operators (within :mod:`dsr_l2o.limits`)."""
        tree = ex.parse(text, self.operands, self.arities)
        check_formula(tree, self.custom, constant_folder(self.evaluate))
        return tree

    def symbol(self, name: str) -> sp.Symbol:
        """The sympy symbol of an operand (non-negative where the grammar proves it)."""
        operand = self.operands[name]
        if operand.kind == "step":
            return sp.Symbol(name, positive=True)
        return sp.Symbol(name, nonnegative=True) if operand.nonnegative else sp.Symbol(name, real=True)

    def to_sympy(self, node: ex.Expr) -> sp.Expr:
        """Convert an expression of this grammar to sympy (guarded operators stay guarded)."""
        if isinstance(node, ex.Num):
            v = node.value
            return sp.Integer(int(v)) if v == int(v) and abs(v) < 1e15 else sp.Float(v)
        if isinstance(node, ex.Var):
            return self.symbol(node.name)
        if isinstance(node, ex.Power):
            return _exact_power(self.to_sympy(node.base), node.exponent)
        return self.operators[node.op].sympy(*(self.to_sympy(a) for a in node.args))

    def evaluate(self, node: ex.Expr, env: Mapping[str, Any]) -> Any:
        """Evaluate an expression on tensors (or floats) with the safe torch operators."""
        if isinstance(node, ex.Num):
            return node.value
        if isinstance(node, ex.Var):
            return env[node.name]
        if isinstance(node, ex.Power):
            return _as_tensor(self.evaluate(node.base, env)) ** node.exponent
        values = [self.evaluate(a, env) for a in node.args]
        like = next((v for v in values if isinstance(v, torch.Tensor)), None)
        return self.operators[node.op].torch(*(_as_tensor(v, like) for v in values))

    def dependencies(self, names) -> list[str]:
        """``names`` and every operand they are defined from, in dependency order."""
        needed, stack = set(), list(names)
        while stack:
            name = stack.pop()
            if name in needed:
                continue
            needed.add(name)
            operand = self.operands[name]
            if operand.source is not None:
                stack.extend(ex.variables(operand.source))
        return [n for n in self.operands if n in needed]


def _as_tensor(value, like: torch.Tensor | None = None) -> torch.Tensor:
    """``value`` as a tensor; numbers take ``like``'s floating dtype and device (else float64)."""
    if isinstance(value, torch.Tensor):
        return value
    if like is not None and like.is_floating_point():
        return torch.tensor(float(value), dtype=like.dtype, device=like.device)
    device = like.device if like is not None else None
    return torch.tensor(float(value), dtype=torch.float64, device=device)


def _exact_power(base: sp.Expr, exponent: int) -> sp.Expr:
    """``base ** exponent``; a huge exact rational is raised as a float so sympy stays small."""
    if base.is_Rational:
        bits = max(abs(base.p).bit_length(), base.q.bit_length())
        if bits * exponent > 4096:
            return sp.Float(base, 15) ** exponent
    return base ** exponent


def _nonnegative(node: ex.Expr, operands: Mapping[str, Operand], operators: Mapping[str, Operator]) -> bool:
    """Whether ``node`` is provably >= 0, by each operator's sign rule."""
    if isinstance(node, ex.Num):
        return node.value >= 0
    if isinstance(node, ex.Var):
        return operands[node.name].nonnegative
    if isinstance(node, ex.Power):
        return node.exponent % 2 == 0 or _nonnegative(node.base, operands, operators)
    return operators[node.op].nonnegative(*(_nonnegative(a, operands, operators) for a in node.args))


class _GrammarLoader(yaml.SafeLoader):
    """PyYAML's safe loader, used in two steps: compose (checked by :class:`_Located`), then construct."""


_YAML_TRUE = ("yes", "true", "on")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_KEY_ON_LINE = re.compile(r"^\s*(?:-\s+)?['\"]?([^\s:'\"#{}\[\],]+)['\"]?\s*:")


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


def _flow_too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting first exceeds MAX_FLOW_DEPTH, else None.

    PyYAML scans deep flow nesting in quadratic time, so this linear pre-check (which skips
    quoted strings and comments) keeps hostile files cheap to reject.
    """
    depth, line, quote, i = 0, 1, None, 0
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return line
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def _suggest(word, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _key_on_line(text: str, line: int | None) -> str:
    """The mapping key written on ``line`` of ``text`` (or the nearest one above it)."""
    lines = text.splitlines()
    if not line:
        return "(document)"
    for number in range(min(line, len(lines)), 0, -1):
        match = _KEY_ON_LINE.match(lines[number - 1])
        if match:
            return match.group(1)
    return "(document)"


class _Located:
    """Line numbers of the keys of a composed YAML document, its duplicate keys and its aliases."""

    def __init__(self, root: yaml.Node | None = None):
        self.lines: dict[tuple, int] = {}
        self.duplicate: tuple[tuple, int, int] | None = None
        self.alias: tuple[tuple, int] | None = None
        self.starts: dict[tuple[int, int], tuple] = {}
        if root is not None:
            self._walk(root)

    def _walk(self, root):
        visited, stack = set(), [(root, ())]
        while stack:
            node, path = stack.pop()
            if id(node) in visited:
                self.alias = self.alias or (path, self.lines.get(path, node.start_mark.line + 1))
                continue
            visited.add(id(node))
            self.lines.setdefault(path, node.start_mark.line + 1)
            self.starts.setdefault((node.start_mark.line, node.start_mark.column), path)
            if isinstance(node, yaml.MappingNode):
                first: dict[tuple, int] = {}
                for key, value in node.value:
                    name = key.value if isinstance(key, yaml.ScalarNode) else "(complex key)"
                    if key.tag == "tag:yaml.org,2002:bool":
                        self.lines.setdefault(path + (str(name.lower() in _YAML_TRUE),), key.start_mark.line + 1)
                    sub, line = path + (name,), key.start_mark.line + 1
                    ident = (key.tag, name)
                    if isinstance(key, yaml.ScalarNode) and name != "<<" and ident in first:
                        self.duplicate = self.duplicate or (sub, line, first[ident])
                    first.setdefault(ident, line)
                    self.lines.setdefault(sub, line)
                    stack.append((value, sub))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    stack.append((item, path + (i,)))

    def line(self, path) -> int | None:
        """Line of ``path`` (keys and list indexes), or of its nearest enclosing key."""
        path = tuple(str(p) if not isinstance(p, int) or isinstance(p, bool) else p for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def key_at(self, line: int, column: int | None = None) -> tuple | None:
        """The key path of the node starting at ``line`` and ``column``, else the deepest on ``line``."""
        if (line - 1, column) in self.starts:
            return self.starts[(line - 1, column)]
        paths = [p for p, n in self.lines.items() if n == line]
        return max(paths, key=len) if paths else None


class _Builder:
    def __init__(self, text: str, origin: str):
        self.text, self.origin = text, origin
        self.where = _Located()

    def fail(self, path, message: str):
        line = self.where.line(path) or 1
        key = shorten(".".join(str(p) for p in path), 80) or "(top level)"
        raise GrammarError(f"{self.origin}:{line}: {key}: {message}") from None

    def fail_at(self, mark, message: str):
        line = mark.line + 1 if mark else None
        path = self.where.key_at(line, mark.column) if mark else None
        key = ".".join(str(p) for p in path) if path else _key_on_line(self.text, line)
        raise GrammarError(f"{self.origin}:{line or 1}: {shorten(key, 80) or '(top level)'}: {message}") from None

    def load(self) -> Grammar:
        data = self.read_yaml()
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

    def read_yaml(self):
        loader = None
        deep = _flow_too_deep(self.text)
        if deep:
            self.fail_at(yaml.Mark("", 0, deep - 1, 0, None, None),
                         f"YAML nests [ ] or {{ }} more than {MAX_FLOW_DEPTH} levels deep; a grammar needs only a few")
        try:
            loader = _GrammarLoader(self.text)
            root = loader.get_single_node()
            self.where = _Located(root)
            self.check_structure()
            self.check_numbers(root)
            return None if root is None else loader.construct_document(root)
        except RecursionError:
            self.fail((), "YAML nests too deeply; a grammar needs only a few levels")
        except yaml.constructor.ConstructorError as err:
            if "could not determine a constructor" in str(err.problem):
                self.fail_at(err.problem_mark, f"YAML tag not allowed ({err.problem}); grammars use plain YAML "
                              "only: strings, numbers, lists and mappings")
            self.fail_at(err.problem_mark, f"invalid YAML value ({err.problem}); use plain strings, numbers, "
                          "lists and mappings")
        except (ValueError, OverflowError) as err:
            self.fail((), f"a YAML value cannot be read ({shorten(err, 80)}); write plain numbers and strings")
        except yaml.reader.ReaderError as err:
            line = self.text[: err.position].count("\n")
            self.fail_at(yaml.Mark("", err.position, line, -1, None, None), f"character {chr(err.character)!r} is not allowed in YAML; "
                          "remove it or save the file as plain UTF-8 text")
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            self.fail_at(getattr(err, "problem_mark", None), f"invalid YAML: {problem}; check indentation and quoting")
        finally:
            if loader is not None:
                loader.dispose()

    def check_numbers(self, root):
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.MappingNode):
                stack.extend(part for pair in node.value for part in pair)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
                self.fail_at(node.start_mark, f"number {shorten(node.value)} is longer than {MAX_NUMBER_CHARS} "
                             "characters; write it with an exponent, e.g. 1e-8")

    def check_structure(self):
        if self.where.duplicate:
            path, line, first = self.where.duplicate
            raise GrammarError(f"{self.origin}:{line}: {'.'.join(map(str, path))}: duplicate key "
                               f"(first given on line {first}); remove or rename one of them")
        if self.where.alias:
            path, line = self.where.alias
            raise GrammarError(f"{self.origin}:{line}: {'.'.join(map(str, path)) or '(top level)'}: "
                               "YAML aliases (*name) are not supported; write the value out")

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
            operators[name] = _custom_operator(name, args, bodies[name], dict(operators))
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
                          f"mapping with 'ema' or 'expr'{_suggest(spec, BUILTIN_KINDS)}")
            if not isinstance(spec, dict):
                self.fail(path, "must be 'grad', 'param', 'step', {ema: EXPR, beta: B} or {expr: EXPR}")
            for key in spec:
                if key not in OPERAND_KEYS:
                    self.fail(path + (key,), f"unknown key; operand keys are {', '.join(sorted(OPERAND_KEYS))}"
                              f"{_suggest(key, OPERAND_KEYS)}")
            if ("ema" in spec) == ("expr" in spec):
                self.fail(path, "needs exactly one of 'ema' (a moving average) or 'expr' (a derived value)")
            kind = "ema" if "ema" in spec else "expr"
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
            nonneg = _nonnegative(body, operands, operators)
            if kind == "expr":
                for key in ("beta", "debias"):
                    if key in spec:
                        self.fail(path + (key,), "only applies to 'ema' operands; remove it")
                operands[name] = Operand(name, "expr", body, nonnegative=nonneg)
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


def _custom_operator(name, args, body, operators) -> Operator:
    helper = Grammar(name, {}, (), (), (), operators)
    symbols = {a: sp.Dummy(f"{name}_{a}", real=True) for a in args}
    template: list[sp.Expr] = []

    def torch_fn(*values):
        out = helper.evaluate(body, dict(zip(args, values)))
        return _as_tensor(out, next((v for v in values if isinstance(v, torch.Tensor)), None))

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


def default_grammar_path() -> Path:
    """Path of the default grammar (``grammars/default.yaml``)."""
    return data_path("grammars", "default.yaml")


def grammar_path(path: str | Path) -> Path:
    """The grammar file ``path`` names: the file itself, else with ``.yaml``/``.yml`` added, else
    (for a bare name such as ``default``) the shipped grammar of that name.

    Raises :class:`GrammarError` (one line) for a directory or a missing file.
    """
    path = Path(path)
    candidates = [path]
    if path.suffix not in (".yaml", ".yml") and path.name:
        candidates += [path.with_name(path.name + ".yaml"), path.with_name(path.name + ".yml")]
        if len(path.parts) == 1:
            try:
                candidates.append(data_path("grammars", path.name + ".yaml"))
            except (ModuleNotFoundError, FileNotFoundError):
                pass
    for candidate in candidates:
        if is_file(candidate):
            return candidate
    if is_file(path, directory=True):
        raise GrammarError(f"{path}: is a directory; pass the path of a .yaml grammar file inside it")
    also = f" (also tried {path}.yaml)" if len(candidates) > 1 else ""
    raise GrammarError(f"{path}: no such grammar file{also}; pass the path of a .yaml grammar file")


def _read_grammar_file(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_GRAMMAR_BYTES:
            raise GrammarError(f"{path}:1: (document): grammar file is larger than {MAX_GRAMMAR_BYTES // 1000} kB; a grammar is a few lines")
        raw = path.read_bytes()
    except OSError as err:
        raise GrammarError(f"{path}: cannot read the file ({err.strerror}); check its path and permissions") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        key = _key_on_line(raw.decode("utf-8", errors="replace"), line)
        raise GrammarError(f"{path}:{line}: {key}: byte 0x{raw[err.start]:02x} is not UTF-8 text; "
                           "save the grammar as UTF-8") from None


def _looks_like_yaml_text(text: str) -> bool:
    return "\n" in text or bool(re.search(r":(\s|$)|^\s*\{", text))


def grammar_from_text(text: str, origin: str | Path) -> Grammar:
    """Load grammar YAML ``text`` as if read from the file ``origin`` (its name and messages use it)."""
    return _Builder(text, str(origin)).load()


def load_grammar(path_or_text: str | Path | Grammar | None = None) -> Grammar:
    """Load a grammar from a YAML file path, YAML text, or ``None`` for the default grammar.

    A string is a path unless it is YAML text (several lines, or a one-line mapping); a path may
    leave out ``.yaml`` and a bare name such as ``default`` finds a shipped grammar.
    """
    if isinstance(path_or_text, Grammar):
        return path_or_text
    if path_or_text is None:
        path_or_text = default_grammar_path()
    if isinstance(path_or_text, str) and _looks_like_yaml_text(path_or_text) and not is_file(Path(path_or_text)):
        if len(path_or_text.encode("utf-8", errors="replace")) > MAX_GRAMMAR_BYTES:
            raise GrammarError(f"<text>:1: (document): grammar text is larger than {MAX_GRAMMAR_BYTES // 1000} kB; "
                               "a grammar is a few lines")
        return _Builder(path_or_text, "<text>").load()
    if not isinstance(path_or_text, (str, Path)):
        raise GrammarError(f"a grammar must be a path, YAML text or a Grammar, not {type(path_or_text).__name__}")
    path = grammar_path(path_or_text)
    return _Builder(_read_grammar_file(path), str(path)).load()
