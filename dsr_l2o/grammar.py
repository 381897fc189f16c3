"""Grammars: which operands an update rule may read and which operators it may apply.

A grammar is a YAML file (see ``grammars/default.yaml`` and ``docs/grammar.md``). It is parsed
with PyYAML's safe loader only, validated key by key, and every mistake is reported as one line
``FILE:LINE: KEY: what is wrong; how to fix it``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

import networkx as nx
import sympy as sp
import torch
import yaml

from . import expr as ex
from .errors import FormulaError, GrammarError
from .operators import BUILTIN_OPERATORS, Operator

BUILTIN_KINDS = ("grad", "param", "step")
OPERAND_KEYS = {"ema", "beta", "debias", "expr"}
TOP_KEYS = {"name", "description", "operands", "unary", "binary", "constants", "operators"}
MAX_GRAMMAR_BYTES = 1_000_000


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

    def describe(self) -> str:
        """The operand's definition in the formula language."""
        if self.kind in BUILTIN_KINDS:
            return self.kind
        if self.kind == "expr":
            return ex.to_text(self.source)
        text = f"ema({ex.to_text(self.source)}, beta={self.beta:g})"
        return text + ", debiased" if self.debias else text


@dataclass
class Grammar:
    """A parsed, validated grammar. Operands are in dependency order."""

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

    @property
    def arities(self) -> dict[str, int]:
        return {name: op.arity for name, op in self.operators.items()}

    def parse(self, text: str) -> ex.Expr:
        """Parse a formula over this grammar's operands and operators."""
        return ex.parse(text, self.operands, self.arities)

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
            return self.to_sympy(node.base) ** node.exponent
        return self.operators[node.op].sympy(*(self.to_sympy(a) for a in node.args))

    def evaluate(self, node: ex.Expr, env: Mapping[str, Any]) -> Any:
        """Evaluate an expression on tensors (or floats) with the safe torch operators."""
        if isinstance(node, ex.Num):
            return node.value
        if isinstance(node, ex.Var):
            return env[node.name]
        if isinstance(node, ex.Power):
            return self.evaluate(node.base, env) ** node.exponent
        args = [_as_tensor(self.evaluate(a, env)) for a in node.args]
        return self.operators[node.op].torch(*args)

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


def _as_tensor(value):
    return value if isinstance(value, torch.Tensor) else torch.tensor(float(value))


def _nonnegative(node: ex.Expr, operands: Mapping[str, Operand]) -> bool:
    if isinstance(node, ex.Num):
        return node.value >= 0
    if isinstance(node, ex.Var):
        return operands[node.name].nonnegative
    if isinstance(node, ex.Power):
        return node.exponent % 2 == 0 or _nonnegative(node.base, operands)
    if node.op in ("abs", "square", "sqrt", "exp", "relu", "pow"):
        return True
    if node.op in ("add", "mul", "div", "max"):
        return all(_nonnegative(a, operands) for a in node.args)
    return False


class _Located:
    """Line numbers of the keys of a YAML document, for error messages."""

    def __init__(self, text: str):
        self.lines: dict[tuple, int] = {}
        try:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        if root is not None:
            self._walk(root, ())

    def _walk(self, node, path):
        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = path + (key.value,)
                self.lines[sub] = key.start_mark.line + 1
                self._walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, path + (i,))

    def line(self, path) -> int | None:
        path = tuple(path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)


class _Builder:
    def __init__(self, text: str, origin: str):
        self.text, self.origin = text, origin
        self.where = _Located(text)

    def fail(self, path, message: str):
        line = self.where.line(path)
        key = ".".join(str(p) for p in path) or "(top level)"
        place = f"{self.origin}:{line}" if line else self.origin
        raise GrammarError(f"{place}: {key}: {message}")

    def load(self) -> Grammar:
        data = self.read_yaml()
        if not isinstance(data, dict):
            self.fail((), "a grammar must be a YAML mapping with keys operands, unary, binary, ...")
        for key in data:
            if key not in TOP_KEYS:
                self.fail((key,), f"unknown key; allowed keys are {', '.join(sorted(TOP_KEYS))}")
        name = data.get("name", Path(self.origin).stem if self.origin != "<text>" else "custom")
        if not isinstance(name, str) or not name.strip():
            self.fail(("name",), "must be a non-empty string")
        custom_specs = self.custom_specs(data.get("operators") or {})
        operators = dict(BUILTIN_OPERATORS)
        operand_specs = data.get("operands")
        if not isinstance(operand_specs, dict) or not operand_specs:
            self.fail(("operands",), "must be a non-empty mapping of names, e.g. 'g: grad'")
        clashes = set(custom_specs) & set(operand_specs)
        if clashes:
            self.fail(("operators", sorted(clashes)[0]), "names an operand too; rename one of them")
        custom = self.build_custom(custom_specs, operators)
        operands = self.build_operands(operand_specs, operators)
        unary = self.operator_list(data, "unary", 1, operators)
        binary = self.operator_list(data, "binary", 2, operators)
        constants = self.constants(data.get("constants", []))
        return Grammar(
            name=name.strip(), operands=operands, unary=unary, binary=binary, constants=constants,
            operators=operators, custom=custom, description=str(data.get("description", "")),
            source_text=self.text, path=None if self.origin == "<text>" else self.origin,
        )

    def read_yaml(self):
        try:
            return yaml.safe_load(self.text)
        except yaml.constructor.ConstructorError as err:
            line = err.problem_mark.line + 1 if err.problem_mark else "?"
            raise GrammarError(
                f"{self.origin}:{line}: YAML tag not allowed ({err.problem}); grammars use plain "
                "YAML only: strings, numbers, lists and mappings"
            ) from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = mark.line + 1 if mark else "?"
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise GrammarError(f"{self.origin}:{line}: invalid YAML: {problem}; check indentation and quoting") from None

    def custom_specs(self, specs) -> dict[str, tuple[tuple[str, ...], str]]:
        if not isinstance(specs, dict):
            self.fail(("operators",), "must be a mapping like 'softsign: {args: [x], expr: \"x / (1 + abs(x))\"}'")
        out = {}
        for name, spec in specs.items():
            path = ("operators", name)
            self.check_name(path, name)
            if name in BUILTIN_OPERATORS:
                self.fail(path, "is a built-in operator; give the custom operator another name")
            if not isinstance(spec, dict) or set(spec) != {"args", "expr"}:
                self.fail(path, "must have exactly the keys 'args' (a list of names) and 'expr' (a formula)")
            args = spec["args"]
            if not isinstance(args, list) or not args or len(args) > 2 or not all(isinstance(a, str) for a in args):
                self.fail(path + ("args",), "must be a list of one or two argument names, e.g. [x] or [x, y]")
            if len(set(args)) != len(args):
                self.fail(path + ("args",), "argument names must differ")
            for a in args:
                self.check_name(path + ("args",), a)
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
            operators[name] = _custom_operator(name, args, bodies[name], dict(operators))
            custom[name] = (args, bodies[name])
        return custom

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
                self.fail(path, f"unknown built-in {spec!r}; use one of {', '.join(BUILTIN_KINDS)} or a mapping with 'ema' or 'expr'")
            if not isinstance(spec, dict):
                self.fail(path, "must be 'grad', 'param', 'step', {ema: EXPR, beta: B} or {expr: EXPR}")
            for key in spec:
                if key not in OPERAND_KEYS:
                    self.fail(path + (key,), f"unknown key; operand keys are {', '.join(sorted(OPERAND_KEYS))}")
            if ("ema" in spec) == ("expr" in spec):
                self.fail(path, "needs exactly one of 'ema' (a moving average) or 'expr' (a derived value)")
            kind = "ema" if "ema" in spec else "expr"
            text = spec[kind]
            if not isinstance(text, str):
                text = str(text) if isinstance(text, (int, float)) else None
            if text is None:
                self.fail(path + (kind,), "must be a formula string over the other operands, e.g. \"g**2\"")
            try:
                body = ex.parse(text, specs.keys(), arities)
            except FormulaError as err:
                self.fail(path + (kind,), str(err))
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
            nonneg = _nonnegative(body, operands)
            if kind == "expr":
                for key in ("beta", "debias"):
                    if key in spec:
                        self.fail(path + (key,), "only applies to 'ema' operands; remove it")
                operands[name] = Operand(name, "expr", body, nonnegative=nonneg)
                continue
            beta = spec.get("beta")
            if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not (0 < beta < 1) or not math.isfinite(beta):
                self.fail(path + ("beta",), "is required and must be a number strictly between 0 and 1, e.g. 0.9")
            debias = spec.get("debias", False)
            if not isinstance(debias, bool):
                self.fail(path + ("debias",), "must be true or false")
            operands[name] = Operand(name, "ema", body, float(beta), debias, nonneg)
        return operands

    def operator_list(self, data, key, arity, operators) -> tuple[str, ...]:
        names = data.get(key, [])
        if not isinstance(names, list):
            self.fail((key,), f"must be a list of operator names, e.g. [{'sign, sqrt' if arity == 1 else 'add, mul'}]")
        for i, name in enumerate(names):
            if not isinstance(name, str) or name not in operators:
                known = ", ".join(n for n, op in operators.items() if op.arity == arity)
                self.fail((key, i), f"unknown operator {name!r}; known {key} operators: {known}")
            if operators[name].arity != arity:
                self.fail((key, i), f"{name!r} takes {operators[name].arity} argument(s); list it under "
                          f"{'unary' if operators[name].arity == 1 else 'binary'}")
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            self.fail((key,), f"lists {dup!r} twice; remove the duplicate")
        return tuple(names)

    def constants(self, values) -> tuple[float, ...]:
        if not isinstance(values, list):
            self.fail(("constants",), "must be a list of numbers, e.g. [1, 2, 0.5]")
        for i, v in enumerate(values):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                self.fail(("constants", i), f"{v!r} is not a finite number")
        if len(set(values)) != len(values):
            self.fail(("constants",), "lists a value twice; remove the duplicate")
        return tuple(float(v) for v in values)

    def check_name(self, path, name):
        if not isinstance(name, str) or not name.isidentifier() or not name.isascii():
            self.fail(path, f"{name!r} is not a valid name; use letters, digits and '_' (not first a digit)")

    def no_cycle(self, graph, section):
        try:
            cycle = nx.find_cycle(graph)
        except nx.NetworkXNoCycle:
            return
        names = [u for u, _ in cycle] + [cycle[0][0]]
        self.fail((section, cycle[0][1]), f"definitions form a cycle {' -> '.join(names)}; "
                  "define each from earlier ones only")


def _custom_operator(name, args, body, operators) -> Operator:
    helper = Grammar(name, {}, (), (), (), operators)

    def torch_fn(*values):
        return helper.evaluate(body, dict(zip(args, values)))

    def sympy_fn(*values):
        symbols = {a: sp.Symbol(f"_{name}_{a}", real=True) for a in args}
        template = _sympy_with(helper, body, symbols)
        return template.subs({symbols[a]: v for a, v in zip(args, values)}, simultaneous=True)

    latex = rf"\operatorname{{{name}}}\left({', '.join('{%d}' % i for i in range(len(args)))}\right)"
    return Operator(name, len(args), torch_fn, sympy_fn, latex, ex.to_text(body))


def _sympy_with(grammar: Grammar, body: ex.Expr, symbols) -> sp.Expr:
    if isinstance(body, ex.Var):
        return symbols[body.name]
    if isinstance(body, ex.Num):
        return grammar.to_sympy(body)
    if isinstance(body, ex.Power):
        return _sympy_with(grammar, body.base, symbols) ** body.exponent
    return grammar.operators[body.op].sympy(*(_sympy_with(grammar, a, symbols) for a in body.args))


def data_path(folder: str, filename: str) -> Path:
    """A file shipped from the repository's ``grammars/`` or ``searches/`` folder.

    Installed, those folders are the packages ``dsr_l2o.grammars`` and ``dsr_l2o.search_configs``;
    in a source checkout (the package imported from the working tree) they sit beside it.
    """
    package = {"grammars": "dsr_l2o.grammars", "searches": "dsr_l2o.search_configs"}[folder]
    checkout = Path(__file__).resolve().parent.parent / folder / filename
    if checkout.is_file():
        return checkout
    return Path(str(resources.files(package).joinpath(filename)))


def default_grammar_path() -> Path:
    """Path of the default grammar (``grammars/default.yaml``)."""
    return data_path("grammars", "default.yaml")


def load_grammar(path_or_text: str | Path | Grammar | None = None) -> Grammar:
    """Load a grammar from a YAML file path, YAML text, or ``None`` for the default grammar."""
    if isinstance(path_or_text, Grammar):
        return path_or_text
    if path_or_text is None:
        path_or_text = default_grammar_path()
    if isinstance(path_or_text, Path) or ("\n" not in str(path_or_text) and str(path_or_text).endswith((".yaml", ".yml"))):
        path = Path(path_or_text)
        if not path.is_file():
            raise GrammarError(f"{path}: no such grammar file; pass a path to a .yaml grammar")
        if path.stat().st_size > MAX_GRAMMAR_BYTES:
            raise GrammarError(f"{path}: grammar file is larger than 1 MB")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise GrammarError(f"{path}: not UTF-8 text; save the grammar as UTF-8") from None
        return _Builder(text, str(path)).load()
    return _Builder(str(path_or_text), "<text>").load()
