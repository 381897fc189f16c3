"""Shared checks of an operand kind on every path: the exported optimizer, the batched engine."""

import functools
import importlib.util

import pytest
import torch

import dsr_l2o.lowering.fused as fused_module
from dsr_l2o.engine import tune_batched
from dsr_l2o.evaluation.baselines import formula_spec
from dsr_l2o.evaluation.protocol import tune
from dsr_l2o.export.torch_source import torch_source

K_TILDE_OPERANDS = """\
  g_prev: {prev: g}
  c: {expr: "g + 0.225 * (g - g_prev)"}
  c_norm: {norm: c}
  k: {expr: "c / max(1, c_norm)"}
  k_hat: {ema: k, beta: 0.9, debias: true}
  ku_hat: {ema: "k**2", beta: 0.999, debias: true}
  k_tilde: {expr: "k_hat / (sqrt(ku_hat) + 1e-8)"}
"""
"""MARS's operands as grammars/mars.yaml writes them (after g: grad): a held value, a norm per
tensor and debiased averages of what it clips; the grammars of the norm and Inductor tests use them."""


def trace_with_eager_backend(monkeypatch):
    """Compile fused steps, the library's and an exported module's, with dynamo's eager backend:
    the trace is checked without Inductor's C++ build (a few tests run that)."""
    monkeypatch.setattr(fused_module, "BACKEND", "eager")
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))


def exported_module(formula, path, lr):
    """The module of ``formula``'s exported optimizer, written to ``path`` and imported."""
    path.write_text(torch_source(formula, lr=lr), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def assert_engine_matches_sequential(texts, grammar, task, protocol):
    """The batched engine tunes each formula of ``texts`` as the sequential protocol does."""
    specs = [formula_spec(text, grammar) for text in texts]
    for spec, result in zip(specs, tune_batched(specs, task, protocol)):
        sequential = tune(spec, task, protocol)
        assert result.best_lr == sequential.best_lr
        assert result.scores_by_lr == pytest.approx(sequential.scores_by_lr, rel=1e-4)
