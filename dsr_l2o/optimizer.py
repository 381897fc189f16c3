"""SymbolicOptimizer: a ``torch.optim.Optimizer`` that applies a discovered update rule."""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from typing import Callable, Iterable

import torch

from .errors import ConfigError
from .formula import Formula, parse_formula
from .grammar import Grammar
from .lowering import Program, TensorOps, compile_formula
from .lowering.fused import FusedStep, chunks, compile_available, fused_step


class SymbolicOptimizer(torch.optim.Optimizer):
    r"""Apply the update rule ``formula`` to every parameter, coordinate by coordinate.

    For each parameter :math:`w` with gradient :math:`g` at step :math:`t = 1, 2, \dots`
    (counted per parameter, from 1):

    .. math::

        w &\leftarrow w \,(1 - \eta \lambda)                                  \\
        s_k &\leftarrow \beta_k s_k + (1 - \beta_k)\, \mathrm{src}_k(g, w, \dots)
              \quad\text{for each moving average } k \text{ the formula needs} \\
        w &\leftarrow w - \eta\, f(g, w, t, \hat s_1, \dots)

    with learning rate :math:`\eta` (``lr``) and decoupled weight decay :math:`\lambda`
    (``weight_decay``, AdamW style, applied first; the rule then reads the decayed :math:`w`).

    Operands (see :class:`dsr_l2o.grammar.Operand`): ``grad`` is ``p.grad``, ``param`` is ``p``,
    ``step`` is :math:`t`. An ``ema`` operand is the moving average :math:`s_k` of its source
    expression, zero-initialised and updated with the current gradient *before* the rule reads
    it; with ``debias: true`` the rule reads :math:`\hat s_k = s_k / (1 - \beta_k^t)`. Sources
    may be any expression over other operands, updated in dependency order. An ``expr``
    operand is recomputed each step and keeps no state. Only the moving averages the formula
    needs, directly or through other operands, are stored (``state[p][name]``, one buffer per
    distinct definition, so ``m`` and ``m_hat`` share one) plus ``state[p]["step"]``.

    Values follow the safe semantics of :mod:`dsr_l2o.operators` (division floors the
    denominator's magnitude at ``1e-12``, ``log`` reads ``log(max(|x|, 1e-12))``, ...).
    The formula is compiled once (:mod:`dsr_l2o.lowering`): guards that provably never fire
    are dropped, scalar factors such as bias corrections are folded into fused in-place tensor
    ops. ``foreach=True`` runs each op as one ``torch._foreach_*`` call over all tensors of a
    group; ``False`` runs the whole program for one tensor at a time (less temporary memory,
    better cache use for large CPU tensors). ``None`` picks foreach on CUDA, and on CPU when
    the tensors are small on average.

    ``fused=True`` runs the whole step of a group as one function compiled with ``torch.compile``
    (:mod:`dsr_l2o.lowering.fused`): one generated kernel per formula that reads each tensor
    once and writes the parameter and each moving average once (Inductor emits C++ on CPU and
    Triton on CUDA), at most :data:`~dsr_l2o.lowering.fused.CHUNK` tensors per call, so the first
    step, which compiles, takes about as long for hundreds of tensors as for sixteen; later
    steps, learning-rate changes and new step counts reuse it. Contiguous
    tensors take the fused path, others the eager one. Where compilation is unavailable or
    fails, the optimizer warns once and runs the eager path; the numbers agree within float
    rounding either way, and ``state_dict()`` is the same on every path.

    Example: ``SymbolicOptimizer(model.parameters(), "m_hat / (sqrt(v_hat) + 1e-8)", lr=1e-3)``
    is Adam; ``"sign(m + 0.1 * g)"`` with ``m: {ema: g, beta: 0.99}`` is Lion.

    Args:
        params: parameters or parameter groups (``lr`` and ``weight_decay`` may differ per group).
        formula: the update direction ``f``, a string in ``grammar``'s language or a
            :class:`~dsr_l2o.formula.Formula`.
        lr: learning rate :math:`\eta`.
        grammar: a :class:`~dsr_l2o.grammar.Grammar`, a YAML path, or ``None`` for the default.
        weight_decay: decoupled weight decay :math:`\lambda`.
        foreach: multi-tensor path on/off; ``None`` picks it from the parameters' device.
        fused: the compiled single-kernel step (``torch.compile``); eager where it cannot compile.
    """

    def __init__(self, params: Iterable, formula: str | Formula, lr: float = 1e-3,
                 grammar: Grammar | str | None = None, weight_decay: float = 0.0,
                 foreach: bool | None = None, fused: bool = False):
        _check_number("lr", lr)
        _check_number("weight_decay", weight_decay)
        if not isinstance(fused, bool):
            raise ConfigError(f"fused must be True or False, got {fused!r}")
        if fused and foreach:
            raise ConfigError("foreach=True and fused=True exclude each other; pick one (fused is the faster step)")
        self.formula = _as_formula(formula, grammar)
        self.program: Program = compile_formula(self.formula)
        self._fused: FusedStep | None = None
        self._fused_failed = False
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay, "foreach": foreach, "fused": fused})

    @property
    def state_keys(self) -> list[str]:
        """Names of the per-parameter buffers (one per moving average the formula needs)."""
        return list(self.program.state_keys)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Apply one update to every parameter with a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            _check_number("lr", group["lr"])
            _check_number("weight_decay", group["weight_decay"])
            buckets: dict[tuple, list[torch.Tensor]] = defaultdict(list)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise ConfigError("SymbolicOptimizer does not support sparse gradients; use dense ones")
                if p.is_complex():
                    raise ConfigError("SymbolicOptimizer needs real parameters; view complex ones with torch.view_as_real")
                state = self._init_state(p)
                state["step"] += 1
                buckets[(p.device, p.dtype, state["step"])].append(p)
            lr, wd = float(group["lr"]), float(group["weight_decay"])
            for (device, _, t), params in buckets.items():
                if group.get("fused") and self._fused_ready():
                    params = self._run_fused(params, t, lr, wd)
                    if not params:
                        continue
                foreach = group["foreach"]
                if foreach is None:
                    foreach = _foreach_pays(device, params)
                if foreach:
                    self._run(_FOREACH_OPS, params, t, lr, wd)
                else:
                    for p in params:
                        self._run(_SINGLE_OPS, [p], t, lr, wd)
        return loss

    def _run(self, ops: TensorOps, params: list[torch.Tensor], t: int, lr: float, wd: float) -> None:
        grads = [p.grad for p in params]
        states = {k: [self.state[p][k] for p in params] for k in self.program.state_keys}
        self.program.run(ops, params, grads, states, t, lr, wd)

    def _fused_ready(self) -> bool:
        """Whether the fused step can run: built on first use, warning once when it cannot."""
        if self._fused_failed:
            return False
        if self._fused is None:
            if not compile_available():
                return self._fall_back("torch.compile is unavailable in this installation")
            self._fused = fused_step(self.program)
            if self._fused is None:
                self._fused_failed = True
                return False
        return True

    def _fall_back(self, why: str) -> bool:
        warnings.warn(f"SymbolicOptimizer(fused=True): {why}; running the eager step instead", RuntimeWarning,
                      stacklevel=4)
        self._fused_failed = True
        return False

    def _run_fused(self, params: list[torch.Tensor], t: int, lr: float, wd: float) -> list[torch.Tensor]:
        """Update the contiguous tensors with the compiled step; returns those left for the eager path."""
        keys = self.program.state_keys
        taken = [p for p in params if _contiguous(p, [self.state[p][k] for k in keys])]
        taken.sort(key=lambda p: p.numel() == 1)  # one-element tensors (traced apart) share the last chunks
        if not taken:
            return params
        flat = [p.view(-1) for p in taken]  # elementwise: 1-D views keep the compiled guards cheap
        grads = [p.grad.view(-1) for p in taken]
        states = [[self.state[p][k].view(-1) for p in taken] for k in keys]
        scalars = self._fused.scalars(t, lr, wd, taken[0])
        done: set[int] = set()
        for part in chunks(len(taken)):
            try:
                self._fused.compiled()(flat[part], grads[part], [s[part] for s in states], scalars, wd != 0.0)
            except Exception as err:  # a compiler error, a missing C++ toolchain, an unsupported backend
                first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                self._fall_back(f"compilation failed ({type(err).__name__}: {first[:200]})")
                break
            done.update(id(p) for p in taken[part])
        return [p for p in params if id(p) not in done]

    def _init_state(self, p: torch.Tensor) -> dict:
        state = self.state[p]
        if not state:
            state["step"] = 0
            for key in self.program.state_keys:
                state[key] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a state saved by an optimizer with the same formula (checked by buffer names)."""
        expected = set(self.program.state_keys) | {"step"}
        for pid, st in state_dict.get("state", {}).items():
            if set(st) != expected:
                raise ConfigError(
                    f"saved optimizer state for parameter {pid} holds {sorted(st)}, but formula "
                    f"{self.formula.text!r} needs {sorted(expected)}; load it into an optimizer with the same formula"
                )
        super().load_state_dict(state_dict)


_FOREACH_OPS, _SINGLE_OPS = TensorOps(True), TensorOps(False)
SMALL_TENSOR = 1 << 15
"""On CPU, tensors below this mean size update faster together (foreach) than one by one."""


def _foreach_pays(device: torch.device, params: list[torch.Tensor]) -> bool:
    """The default path: foreach on CUDA, and on CPU for many small tensors."""
    if device.type == "cuda":
        return True
    return len(params) > 1 and sum(p.numel() for p in params) < SMALL_TENSOR * len(params)


def _contiguous(p: torch.Tensor, buffers: list[torch.Tensor]) -> bool:
    """Whether ``p``, its gradient and its buffers are non-empty and contiguous (what the fused step takes)."""
    return p.numel() > 0 and p.is_contiguous() and p.grad.is_contiguous() and all(b.is_contiguous() for b in buffers)


def _as_formula(formula, grammar) -> Formula:
    if isinstance(formula, Formula):
        if grammar is not None:
            raise ConfigError("pass the grammar only with a formula string; a Formula carries its own grammar")
        return formula
    if isinstance(formula, str):
        return parse_formula(formula, grammar)
    raise ConfigError(f"formula must be a string or a Formula, not {type(formula).__name__}")


def _check_number(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a finite number >= 0, got {value!r}")
