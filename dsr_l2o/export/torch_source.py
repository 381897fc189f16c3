"""Source code of a standalone ``torch.optim.Optimizer`` for a formula (it imports only torch).

The update is printed from the formula's sympy form, with the safe semantics of
:mod:`dsr_l2o.operators` written out as torch ops, and moving-average state kept only for the
operands the formula needs. Its steps equal :class:`dsr_l2o.optimizer.SymbolicOptimizer`'s.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import math
from datetime import datetime, timezone

import sympy as sp

from .. import __version__
from ..errors import ConfigError, FormulaError
from ..formula import Formula
from ..layout import OperandLayout, dispatch
from ..notation import latex, operand_latex
from ..operators import FORMS
from ..primitives import HELPER_SOURCE, CodeOps

_RESERVED = {"torch", "self", "closure", "loss", "group", "p", "state", "lr", "weight_decay", "step",
             "update", "warnings", "params", "grads", "grad", "states", "scalars", "decay", "decays", "foreach",
             "fused", *HELPER_SOURCE} | set(dir(builtins))


def torch_source(formula: Formula, class_name: str = "DiscoveredOptimizer", lr: float = 1e-3,
                 provenance: list[tuple[str, str]] | None = None) -> str:
    """Python source of a ``torch.optim.Optimizer`` subclass ``class_name`` that follows ``formula``.

    ``provenance`` is a list of ``(label, text)`` lines for the docstring (grammar, search
    settings, dates); ``lr`` is the default learning rate.
    """
    if not class_name.isidentifier() or keyword.iskeyword(class_name) or not class_name.isascii():
        raise ConfigError(f"class name {class_name!r} is not a Python identifier; use e.g. DiscoveredOptimizer")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ConfigError(f"lr must be a finite number >= 0, got {lr!r}")
    printer = _TorchPrinter(formula)
    body = printer.step_body()
    fused_body = _TorchPrinter(formula, fused=True).step_body()
    helpers = "".join("\n\n" + HELPER_SOURCE[name] for name in sorted(printer.code.helpers))
    helpers = helpers + "\n" if helpers else ""
    docstring = _docstring(formula, class_name, provenance or [])
    source = f'''{docstring}

import warnings

import torch
{helpers}
_CHUNK = 16
"""Tensors per compiled call of the fused path: longer lists run in chunks, so the first step
compiles two kernels per dtype however many tensors the model has (up to three more when some
tensors hold one element, which dynamo traces apart; they run last)."""


def _sizes_apart(fn):
    """fn with sizes that are equal by chance kept apart while torch.compile traces it, so the
    next chunk of tensors reuses the kernel (a torch without the setting runs fn as it is)."""
    try:
        import torch.fx.experimental._config as shapes
    except ImportError:
        return fn
    return shapes.patch(use_duck_shape=False)(fn) if hasattr(shapes, "use_duck_shape") else fn


def _fused_update(params, grads, states, scalars, decays):
    """One step on lists of flat tensors: the function torch.compile turns into one kernel.

    scalars: lr, 1 - lr * weight_decay, the step count, then each bias correction 1 / (1 - beta**step).
    """
    lr, decay, step = scalars[0], scalars[1], scalars[2]
    for p, grad, state in zip(params, grads, states):
        if decays:
            p.mul_(decay)
{_indent(fused_body, 8)}
        p.sub_(lr * update)


class {class_name}(torch.optim.Optimizer):
    """Update rule {_plain(formula.text)} (see the module docstring); lr {lr!r} by default.

    weight_decay is decoupled (AdamW style) and applied before the rule reads the parameter.

    Paths, like torch's own optimizers: the default runs one parameter at a time.
    foreach=True batches the weight decay and the parameter update over all parameters
    (torch._foreach_* calls); None turns it on when every tensor is on CUDA. fused=True
    compiles the whole step with torch.compile into one kernel per formula (C++ on CPU, Triton
    on CUDA) that reads each tensor once and writes the parameter and each moving average once;
    the first step compiles (a few kernels of up to 16 tensors each, whatever the number of
    tensors), later steps and learning-rate changes reuse it. Contiguous tensors
    take the fused path. If compilation is unavailable or fails, it warns once and runs the
    default path. The numbers agree within float rounding on every path, and state_dict() is
    the same.
    """

    def __init__(self, params, lr={lr!r}, weight_decay=0.0, foreach=None, fused=False):
        if not 0.0 <= lr < float("inf"):
            raise ValueError(f"lr must be a finite number >= 0, got {{lr!r}}")
        if not 0.0 <= weight_decay < float("inf"):
            raise ValueError(f"weight_decay must be a finite number >= 0, got {{weight_decay!r}}")
        if fused and foreach:
            raise ValueError("foreach=True and fused=True exclude each other; pick one")
        super().__init__(params, {{"lr": lr, "weight_decay": weight_decay, "foreach": foreach, "fused": bool(fused)}})
        self._compiled = None
        self._fused_failed = False

    @torch.no_grad()
    def step(self, closure=None):
        """Apply one update to every parameter with a gradient; returns closure() if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, weight_decay = group["lr"], group["weight_decay"]
            params = [p for p in group["params"] if p.grad is not None]
            for p in params:
                state = self.state[p]
                if not state:
                    state["step"] = 0
{_indent(printer.init_lines(), 20)}
                state["step"] += 1
            if group.get("fused") and not self._fused_failed:
                params = self._fused_step(params, lr, weight_decay)
            foreach = group.get("foreach")
            if foreach is None:
                foreach = bool(params) and all(p.is_cuda for p in params)
            if foreach:
                self._foreach_step(params, lr, weight_decay)
            else:
                for p in params:
                    if weight_decay != 0.0:
                        p.mul_(1.0 - lr * weight_decay)
                    p.add_(self._direction(p), alpha=-lr)
        return loss

    def _direction(self, p):
        """The update direction of p (its moving averages are updated first)."""
        state = self.state[p]
        step = state["step"]
{_indent(body, 8)}
        return update

    def _foreach_step(self, params, lr, weight_decay):
        if weight_decay != 0.0 and params:
            torch._foreach_mul_(params, 1.0 - lr * weight_decay)
        if params:
            torch._foreach_add_(params, [self._direction(p) for p in params], alpha=-lr)

    def _fused_step(self, params, lr, weight_decay):
        """The compiled step on the contiguous tensors; returns the tensors left for the other paths."""
        keys = {printer.layout.state_keys!r}
        buckets, rest = {{}}, []
        for p in params:
            state = self.state[p]
            flat = p.is_contiguous() and p.grad.is_contiguous() and all(state[k].is_contiguous() for k in keys)
            if flat and p.numel() > 0:
                buckets.setdefault((p.device, p.dtype, state["step"]), []).append(p)
            else:
                rest.append(p)
        for bucket in buckets.values():
            bucket.sort(key=lambda p: p.numel() == 1)  # one-element tensors (traced apart) share the last chunks
        pending = list(buckets.items())
        for i, ((device, dtype, step), bucket) in enumerate(pending):
            scalar_dtype = dtype if dtype in (torch.float32, torch.float64) else torch.float32
            debias = [1.0 / (1.0 - beta**step) for beta in {list(printer.layout.debiased.values())!r}]
            scalars = torch.tensor([lr, 1.0 - lr * weight_decay, float(step), *debias], dtype=scalar_dtype,
                                   device=device)
            for j in range(0, len(bucket), _CHUNK):  # a bounded trace per call
                chunk = bucket[j:j + _CHUNK]
                states = [{{k: self.state[p][k].view(-1) for k in keys}} for p in chunk]
                try:
                    if self._compiled is None:
                        self._compiled = _sizes_apart(torch.compile(_fused_update, dynamic=True, fullgraph=True))
                    self._compiled([p.view(-1) for p in chunk], [p.grad.view(-1) for p in chunk], states, scalars,
                                   weight_decay != 0.0)
                except Exception as err:  # no compiler, an unsupported platform, a backend error
                    warnings.warn(f"fused=True: torch.compile failed ({{type(err).__name__}}: "
                                  f"{{str(err).strip()[:200]}}); running the default path instead", RuntimeWarning,
                                  stacklevel=3)
                    self._fused_failed = True
                    return rest + bucket[j:] + [q for _, b in pending[i + 1:] for q in b]
        return rest
'''
    ast.parse(source)
    return source


def _docstring(formula: Formula, class_name: str, provenance: list[tuple[str, str]]) -> str:
    grammar = formula.grammar
    lines = [f"{class_name}: an optimizer update rule found by dsr_l2o.", "",
             "Update (LaTeX), with learning rate eta:", "",
             f"    w_t = w_{{t-1}} - \\eta \\left({latex(grammar, formula.sympy)}\\right)", ""]
    needed = formula.state_operands
    if needed:
        lines += ["where", ""]
        lines += [f"    {operand_latex(grammar, grammar.operands[n])}" for n in needed]
        lines.append("")
    lines.append(f"Formula ({grammar.name} grammar): {formula.text}")
    for label, text in provenance:
        lines.append(f"{label}: {text}")
    lines.append(f"Generated by dsr_l2o {__version__} on {datetime.now(timezone.utc):%Y-%m-%d}; this file imports only torch.")
    text = "\n".join(_plain(line) for line in lines)
    return f'r"""{text}\n"""'


def _plain(text: str) -> str:
    """Text safe inside a raw triple-quoted docstring: printable, no quote runs, no final backslash."""
    text = "".join(ch if ch.isprintable() else " " for ch in str(text)).replace('"', "'")
    return text + " " if text.endswith("\\") else text


def _indent(text: str, spaces: int) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.splitlines())


def _strip_parens(text: str) -> str:
    """``text`` without one pair of parentheses around all of it."""
    if not (text.startswith("(") and text.endswith(")")):
        return text
    depth = 0
    for i, ch in enumerate(text):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0 and i < len(text) - 1:
            return text
    return text[1:-1]


def _py_name(name: str) -> str:
    return f"{name}_" if keyword.iskeyword(name) or name in _RESERVED or name.startswith("_") else name


class _TorchPrinter:
    """Prints the step of one formula: operand definitions, then ``update = ...``."""

    def __init__(self, formula: Formula, fused: bool = False):
        self.formula, self.grammar, self.fused = formula, formula.grammar, fused
        self.code = CodeOps()
        self.names = {self.grammar.symbol(n): _py_name(n) for n in self.grammar.operands}
        self.layout = OperandLayout(self.grammar, formula.operands)

    def init_lines(self) -> str:
        lines = [f'state["{k}"] = torch.zeros_like(p, memory_format=torch.preserve_format)' for k in self.layout.state_keys]
        return "\n".join(lines) or "pass"

    def step_body(self) -> str:
        lines = []
        for op in self.layout.operands():
            lines += dispatch(op, self)
        lines.append(f"update = {self.tensor_expr(self.formula.sympy)}")
        return "\n".join(lines)

    # the layout backend: the lines that define each operand
    def gradient(self, op):
        return [f"{_py_name(op.name)} = {'grad' if self.fused else 'p.grad'}"]

    def parameter(self, op):
        return [f"{_py_name(op.name)} = p"]

    def step(self, op):
        if self.fused:
            return [f"{_py_name(op.name)} = step.to(p.dtype)"]
        return [f"{_py_name(op.name)} = torch.tensor(float(step), dtype=p.dtype, device=p.device)"]

    def derived(self, op):
        return [f"{_py_name(op.name)} = {self.tensor_expr(self.grammar.to_sympy(op.source))}"]

    def average(self, op):
        key = self.layout.buffer_of[op.name]
        lines = []
        if self.layout.updates(op.name):
            source = self.tensor_expr(self.grammar.to_sympy(op.source))
            lines.append(f'state["{key}"].lerp_({source}, 1 - {op.beta!r})')
        buffer, var = f'state["{key}"]', _py_name(op.name)
        if op.debias and self.fused:
            index = 3 + list(self.layout.debiased).index(op.name)
            lines.append(f"{var} = {buffer} * scalars[{index}]")
        else:
            lines.append(f"{var} = {buffer} / (1 - {op.beta!r} ** step)" if op.debias else f"{var} = {buffer}")
        return lines

    def previous(self, op):
        var, buffer = _py_name(op.name), f'state["{op.name}"]'
        source = self.tensor_expr(self.grammar.to_sympy(op.source))
        return [f"{var} = {buffer}.clone()", f"{buffer}.copy_({source})"]

    def norm(self, op):
        source = self.tensor_expr(self.grammar.to_sympy(op.source))
        return [f"{_py_name(op.name)} = torch.linalg.vector_norm({source}).expand_as(p)"]

    def tensor_expr(self, e: sp.Expr) -> str:
        """An expression whose value has the parameter's shape (constants are broadcast)."""
        if e.is_number:
            return f"torch.full_like(p, {self.number(e)})"
        return _strip_parens(self.print(e))

    def number(self, e: sp.Expr) -> str:
        try:
            value = float(e)
        except TypeError:
            raise FormulaError(f"cannot print the non-real constant {e} as torch code") from None
        return repr(value)

    def print(self, e: sp.Expr) -> str:
        if e.is_number:
            value = self.number(e)
            return f"({value})" if value.startswith("-") else value
        if isinstance(e, sp.Symbol):
            return self.names[e]
        if e.is_Add:
            terms = sorted(e.as_ordered_terms(), key=lambda t: t.could_extract_minus_sign())
            text = self.print(terms[0])
            for term in terms[1:]:
                text += f" - {self.print(-term)}" if term.could_extract_minus_sign() else f" + {self.print(term)}"
            return f"({text})"
        if e.is_Mul:
            return self.product(e)
        if e.is_Pow:
            return self.power(e)
        return self.function(e)

    def product(self, e: sp.Expr) -> str:
        coeff, rest = e.as_coeff_Mul()
        if coeff == -1:
            return f"(-{self.print(rest)})"
        nums, dens = ([] if coeff == 1 else [self.print(coeff)]), []
        for factor in sp.Mul.make_args(rest):
            base, exponent = factor.as_base_exp()
            if exponent.is_Number and exponent.is_negative:
                dens.append(self.print(sp.Pow(base, -exponent)))
            else:
                nums.append(self.print(factor))
        text = " * ".join(nums) or "1.0"
        for den in dens:
            text += f" / {den}"
        return f"({text})"

    def power(self, e: sp.Pow) -> str:
        base, exponent = e.args
        if exponent.is_Integer and int(exponent) > 0:
            return f"{self.print(base)} ** {int(exponent)}"
        if exponent.is_negative:
            return f"(1.0 / {self.print(sp.Pow(base, -exponent))})"
        inner = base.args[0] if isinstance(base, sp.Abs) else base
        if exponent == sp.Rational(1, 2):
            text = self.print(inner)
            return f"torch.sqrt(torch.abs({text}))" if isinstance(base, sp.Abs) or not inner.is_nonnegative else f"torch.sqrt({text})"
        return f"torch.pow({self.print(base)}, {self.number(exponent)})"

    def function(self, e: sp.Expr) -> str:
        args = e.args
        if type(e) in FORMS:
            value = FORMS[type(e)][1].kernel(self.code, *(float(a) if a.is_number else self.print(a) for a in args))
            return value if isinstance(value, str) else self.number(sp.Float(value))
        if isinstance(e, (sp.Max, sp.Min)):
            numbers = [a for a in args if a.is_number]
            tensors = [self.print(a) for a in args if not a.is_number]
            fold, clamp = ("torch.maximum", "torch.clamp_min") if isinstance(e, sp.Max) else ("torch.minimum", "torch.clamp_max")
            text = tensors[0]
            for other in tensors[1:]:
                text = f"{fold}({text}, {other})"
            for number in numbers:
                text = f"{clamp}({text}, {self.number(number)})"
            return text
        raise FormulaError(f"cannot print {type(e).__name__} as torch code: no operator of the registry "
                           "(dsr_l2o/operators.py) has this sympy form")
