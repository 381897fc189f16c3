"""The batched evaluation engine: many training runs of one task as one tensor program.

``tune_batched(specs, task, protocol)`` returns what :func:`dsr_l2o.evaluation.protocol.tune`
returns for each optimizer, but trains all learning rates and seeds (and all formulas of one
grammar) together: formula rules on a stacked flat parameter tensor ``[S, R, N]``; torch.optim
optimizers on stacked parameters where that is exact (:mod:`.stacked_optim`), else with one
instance per run. The task's loss is computed for all runs at once: hand-batched for the
built-in task kinds (:mod:`.explicit`), else under ``torch.func.vmap``, else run by run. :func:`train_formulas` and :func:`train_optimizers` run arbitrary batches of
``(optimizer, lr)`` members.
"""

from __future__ import annotations

from .flat import FlatLayout
from .runs import BatchRuns, train_formulas, train_optimizers
from .stacked_optim import LR_LINEAR, stackable
from .tune import as_spec, tune_batched
from .vmap_loss import FlatLoss, vmap_unsupported

__all__ = ["tune_batched", "train_formulas", "train_optimizers", "BatchRuns", "FlatLayout",
           "FlatLoss", "as_spec", "vmap_unsupported", "stackable", "LR_LINEAR"]
