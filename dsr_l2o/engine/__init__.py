"""The batched evaluation engine: many training runs of one task as one tensor program.

``tune_batched(specs, task, protocol)`` returns what :func:`dsr_l2o.evaluation.protocol.tune`
returns for each optimizer, but trains all learning rates and seeds (and all formulas of one
grammar) together: formula rules on a stacked flat parameter tensor ``[S, R, N]`` with the
task's loss under ``torch.func.vmap``; other torch.optim optimizers with one instance per run and
a batched loss. :func:`train_formulas` and :func:`train_optimizers` run arbitrary batches of
``(optimizer, lr)`` members.
"""

from __future__ import annotations

from .flat import FlatLayout
from .runs import BatchRuns, train_formulas, train_optimizers
from .tune import as_spec, tune_batched
from .vmap_loss import FlatLoss, vmap_unsupported

__all__ = ["tune_batched", "train_formulas", "train_optimizers", "BatchRuns", "FlatLayout",
           "FlatLoss", "as_spec", "vmap_unsupported"]
