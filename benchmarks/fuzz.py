"""Fuzz the untrusted inputs: formulas and grammar files, generated at random and crafted.

Every formula goes through the whole symbolic path: parse, the sympy form, LaTeX, evaluation on
tensors, the text round trip, and (every ``--simplify-every``-th one) ``simplify``. Every grammar
goes through ``load_grammar``; a grammar that loads then parses formulas of its own, prints them
and exports a torch optimizer that takes a real step. A *traceback* is any exception other than a
one-line :class:`~dsr_l2o.errors.DsrError` (multi-line or over 500 characters also counts); a
*hang* is an input that takes longer than 5 s. Writes ``benchmarks/fuzz.md``.

Usage: ``python benchmarks/fuzz.py [--formulas 10000] [--grammars 2000] [--seed 0] [--out FILE]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import resource
import time
import traceback
import types
import warnings
from collections import Counter
from pathlib import Path

import torch

from dsr_l2o.budget import BudgetExceeded, time_budget
from dsr_l2o.errors import DsrError
from dsr_l2o.export.torch_source import torch_source
from dsr_l2o.formula import Formula
from dsr_l2o.grammar import load_grammar
from dsr_l2o.simplify import simplify
from machine import cpu_name

HANG_SECONDS = 5.0
GUARD_SECONDS = 30.0
UNARY = ["neg", "sign", "sqrt", "exp", "log", "abs", "square", "tanh", "relu", "softsign"]
BINARY = ["add", "sub", "mul", "div", "max", "min", "pow"]
NUMBERS = ["0", "1", "2", "0.5", "1e-8", "3.7", "1e-300", "1e300", "9" * 50, "0.0001", "8", "1e100", "1e101"]
ALPHABET = "gmvwt_hat()+-*/,. 0123456789e*sqrtexplogsoftsign"


class Tally:
    """Counts of outcomes, the slowest inputs and the first few tracebacks."""

    def __init__(self):
        self.outcomes: Counter = Counter()
        self.tracebacks: list[str] = []
        self.hangs: list[str] = []
        self.slowest = 0.0
        self.slowest_input = ""

    def run(self, kind: str, text: str, work) -> None:
        start = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with time_budget(GUARD_SECONDS):
                    outcome = work()
        except BudgetExceeded:
            outcome = "hang"
        except DsrError as err:
            message = str(err)
            outcome = "error" if "\n" not in message and len(message) <= 500 else "traceback"
            if outcome == "traceback":
                self.tracebacks.append(f"{kind} {text[:120]!r}: long message {message[:200]!r}")
        except Exception:
            outcome = "traceback"
            self.tracebacks.append(f"{kind} {text[:120]!r}: " + traceback.format_exc().strip().splitlines()[-1][:300])
        seconds = time.perf_counter() - start
        if seconds > HANG_SECONDS or outcome == "hang":
            self.hangs.append(f"{kind} {text[:120]!r}: {seconds:.1f} s")
        if seconds > self.slowest:
            self.slowest, self.slowest_input = seconds, f"{kind} {text[:80]!r}"
        self.outcomes[(kind, outcome)] += 1


def random_tree(rng: random.Random, names: list[str], depth: int, unary=UNARY, binary=BINARY) -> str:
    """A random formula text (as a user would type it, not always valid)."""
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(names) if rng.random() < 0.6 else rng.choice(NUMBERS)
    roll = rng.random()
    if roll < 0.35:
        return f"{rng.choice(unary)}({random_tree(rng, names, depth - 1, unary, binary)})"
    if roll < 0.55:
        op = rng.choice(["+", "-", "*", "/"])
        return f"({random_tree(rng, names, depth - 1, unary, binary)} {op} {random_tree(rng, names, depth - 1, unary, binary)})"
    if roll < 0.8:
        a, b = (random_tree(rng, names, depth - 1, unary, binary) for _ in range(2))
        return f"{rng.choice(binary)}({a}, {b})"
    exponent = rng.choice(["2", "3", "8", "0.5", "-1", "1.5", "9", "8**8", "(1/3)"])
    return f"({random_tree(rng, names, depth - 1, unary, binary)})**{exponent}"


def mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        roll, at = rng.random(), rng.randrange(len(chars) + 1)
        if roll < 0.4:
            chars.insert(at, rng.choice(ALPHABET))
        elif roll < 0.7 and chars:
            del chars[min(at, len(chars) - 1)]
        elif chars:
            chars[min(at, len(chars) - 1)] = rng.choice(ALPHABET)
    return "".join(chars)


def crafted_formulas(rng: random.Random) -> list[str]:
    """The issue's shapes and their neighbours: towers, nests, long numbers and names."""
    out = []
    for k in range(1, 26):
        for base in ("g", "10", "(g + 1/3)", "exp(g)", "(g/m)", "9"):
            out.append("(" * k + base + ")**8" * k)
        out.append("**".join(["g"] + ["8"] * k))
        out.append("**".join(["10"] + ["8"] * k))
        for op in ("softsign", "exp", "log", "sqrt", "square", "tanh", "abs"):
            out.append(op + "(" + "" * 0 + (op + "(") * (k - 1) + "g" + ")" * k)
    for n in (10, 100, 300, 400, 1000, 4300, 5000, 9000):
        out += ["9" * n, f"g * {'9' * n}", f"g + {'x' * n}", f"{'1' * n}e-{'9' * 3}", f"g ** {'9' * n}"]
    for text in ("exp(g)**2", "log(g)**2", "(g/m)**2", "square(m / v)", "pow(g, m)**2", "1/exp(g)**3",
                 "sqrt(exp(g))**2", "abs(g/m)**8", "softsign(g)**2", "(-g)**8", "sign(g/m)**3"):
        out.append(text)
    while len(out) < 1500:
        out.append(mutate(rng, rng.choice(out)))
    return out


def formula_inputs(count: int, rng: random.Random, names: list[str]) -> list[str]:
    crafted = crafted_formulas(rng)
    out = list(crafted)
    while len(out) < count:
        roll = rng.random()
        if roll < 0.55:
            out.append(random_tree(rng, names, rng.randint(1, 8)))
        elif roll < 0.9:
            out.append(mutate(rng, random_tree(rng, names, rng.randint(1, 6))))
        else:
            out.append(mutate(rng, rng.choice(crafted)))
    return out[:count]


def formula_path(formula: Formula, with_simplify: bool) -> str:
    formula.sympy
    formula.latex()
    env = {n: torch.randn(8, dtype=torch.float64) for n in formula.grammar.operands}
    with torch.no_grad():
        formula.evaluate(env)
    again = formula.grammar.parse(formula.text)
    assert again == formula.expr, "text round trip changed the tree"
    if with_simplify:
        simple = simplify(formula)
        simple.latex()
    return "ok"


def random_grammar(rng: random.Random) -> str:
    """A grammar file as a user (or an attacker) might write it."""
    names = rng.sample(["g", "w", "t", "m", "v", "s", "float", "int", "len", "p", "lr", "x1", "step", "torch",
                        "self", "sum", "max", "abs", "k", "m_hat"], rng.randint(1, 6))
    lines = [f"name: fuzz{rng.randrange(1000)}", "operands:", f"  {names[0]}: grad"]
    kinds = ["grad", "param", "step", "{ema: %s, beta: %s}", "{expr: '%s'}", "{ema: '%s**2', beta: %s, debias: true}"] * 4 + [
        "{expr: %s}", "bogus", "{ema: %s}"]
    for i, name in enumerate(names[1:], 1):
        kind = rng.choice(kinds)
        source = random_tree(rng, names[:i], rng.randint(0, 3), ["sign", "sqrt", "abs", "exp"], ["add", "mul", "max"])
        beta = rng.choice(["0.9", "0.999", "0.5"] * 6 + ["1.5", "0", "-1", "9" * rng.choice([3, 400]), "'x'", "1e-400"])
        if kind.count("%s") == 2:
            kind = kind % (source.replace("'", ""), beta)
        elif "%s" in kind:
            kind = kind % (source if "'" in kind else rng.choice(["9" * rng.choice([5, 400]), "1e5", source]),)
        lines.append(f"  {name}: {kind}")
    if rng.random() < 0.6:
        extra = ["bogus", "add"] if rng.random() < 0.2 else []
        lines.append("unary: [" + ", ".join(rng.sample(UNARY[:9] + extra, rng.randint(0, 4))) + "]")
    if rng.random() < 0.6:
        lines.append("binary: [" + ", ".join(rng.sample(BINARY + (["neg"] if rng.random() < 0.2 else []), rng.randint(0, 4))) + "]")
    if rng.random() < 0.5:
        values = [rng.choice(["1", "2", "0.5", "1e-8", "3", "0.1", "10", "9" * rng.choice([10, 4301]), "0x" + "f" * rng.choice([4, 4000]),
                              ".inf", "nan", "'a'", "[1]", "1e200"]) for _ in range(rng.randint(0, 4))]
        lines.append("constants: [" + ", ".join(values) + "]")
    if rng.random() < 0.5:
        lines.append("operators:")
        lines.append("  op0: {args: [x], expr: 'x / (1 + abs(x))'}")
        depth, doubling = rng.choice([rng.randint(1, 4), rng.randint(1, 30)]), rng.random() < 0.5
        for i in range(1, depth):
            body = f"op{i - 1}(x) + op{i - 1}(x)" if doubling else f"op{i - 1}(op{i - 1}(x))"
            lines.append(f"  op{i}: {{args: [x], expr: '{body}'}}")
    text = "\n".join(lines) + "\n"
    if rng.random() < 0.15:
        text = mutate(rng, text)
    return text


def grammar_path(text: str, rng: random.Random) -> str:
    grammar = load_grammar(text)
    names = sorted(grammar.operands)
    ops = [n for n in grammar.operators if grammar.operators[n].arity == 1]
    formula = None
    for _ in range(3):
        try:
            candidate = Formula(grammar.parse(random_tree(rng, names, rng.randint(1, 4), ops or ["neg"], ["add", "mul"])), grammar)
        except DsrError:
            continue
        formula_path(candidate, with_simplify=False)
        formula = candidate
    if formula is not None and rng.random() < 0.3:
        module = types.ModuleType("exported")
        exec(compile(torch_source(formula, lr=1e-3), "exported.py", "exec"), module.__dict__)  # our own output
        w = torch.nn.Parameter(torch.randn(4))
        w.grad = torch.randn(4)
        module.DiscoveredOptimizer([w], lr=1e-3).step()
    return "loaded"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formulas", type=int, default=10_000)
    parser.add_argument("--grammars", type=int, default=2_000)
    parser.add_argument("--simplify-every", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(Path(__file__).with_name("fuzz.md")))
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)  # torch imports its compiler on the first optimizer
    rng = random.Random(args.seed)
    tally = Tally()
    default = load_grammar(None)
    names = sorted(default.operands)
    started = time.perf_counter()
    for i, text in enumerate(formula_inputs(args.formulas, rng, names)):
        def work(text=text, i=i):
            formula = Formula(default.parse(text), default)
            return formula_path(formula, with_simplify=i % args.simplify_every == 0)
        tally.run("formula", text, work)
        if i % 1000 == 0:
            print(f"formulas {i}: {dict(tally.outcomes)} ({time.perf_counter() - started:.0f} s)", flush=True)
    formula_seconds = time.perf_counter() - started
    for i in range(args.grammars):
        text = random_grammar(rng)
        tally.run("grammar", text, lambda text=text: grammar_path(text, rng))
        if i % 500 == 0:
            print(f"grammars {i}: {dict(tally.outcomes)} ({time.perf_counter() - started:.0f} s)", flush=True)
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_report(Path(args.out), args, tally, seconds, formula_seconds, peak_mib)


def write_report(path: Path, args, tally: Tally, seconds: float, formula_seconds: float, peak_mib: float) -> None:
    o = tally.outcomes
    rows = [f"| {kind} | {sum(v for (k, _), v in o.items() if k == kind):,} | {o[(kind, 'ok')] + o[(kind, 'loaded')]:,} | "
            f"{o[(kind, 'error')]:,} | {o[(kind, 'traceback')]} | {o[(kind, 'hang')]} |" for kind in ("formula", "grammar")]
    lines = [
        "# Fuzzing formulas and grammar files",
        "",
        f"Written by `benchmarks/fuzz.py --formulas {args.formulas} --grammars {args.grammars} "
        f"--simplify-every {args.simplify_every} --seed {args.seed}`. "
        f"Date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {cpu_name()} (shared with other jobs); Python {platform.python_version()}, torch {torch.__version__}.",
        "",
        "Each formula runs parse, sympy form, LaTeX, evaluation and the text round trip "
        f"(and `simplify` for one in every {args.simplify_every}); each grammar runs `load_grammar`, then up to three "
        "formulas of its own and, for some, an exported torch optimizer's first step. "
        "An *error* is a one-line `DsrError` (the intended answer to bad input); a *traceback* is anything else; "
        f"a *hang* is an input over {HANG_SECONDS:g} s.",
        "",
        "| inputs | count | accepted | one-line errors | tracebacks | hangs |",
        "|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- inputs over {HANG_SECONDS:g} s: {len(tally.hangs)}; slowest input {tally.slowest:.2f} s ({tally.slowest_input})",
        f"- peak resident memory: {peak_mib:,.0f} MiB (limit 1,024 MiB)",
        f"- wall time: {seconds:.0f} s ({formula_seconds:.0f} s formulas, {seconds - formula_seconds:.0f} s grammars)",
    ]
    for title, items in (("Tracebacks", tally.tracebacks), ("Hangs", tally.hangs)):
        if items:
            lines += ["", f"## {title} (first 20)", ""] + [f"- `{item}`" for item in items[:20]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
