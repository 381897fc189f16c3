"""Optimizee tasks: pure, differentiable training problems (quadratics, Rosenbrock, logistic
regression, MLPs and a CNN on scikit-learn's bundled datasets) and task families that sample
them deterministically for meta-training.

>>> task = get_task("mlp_digits_tanh")
>>> params = task.init(seed=0)
>>> loss = task.loss(params, step=0)   # differentiable in params, minibatch fixed by (seed, step)
"""

from __future__ import annotations

from .base import Task, TaskFamily, is_family, is_task, task_seed, task_to
from .module_task import ModuleTask
from .registry import (FAMILY_SAMPLES, TRAINING_FAMILY, VALIDATION_TASKS, get_family, get_task, get_tasks,
                       list_families, list_tasks)

__all__ = ["Task", "TaskFamily", "ModuleTask", "is_task", "is_family", "task_seed", "task_to", "get_task",
           "get_tasks", "get_family", "list_tasks", "list_families", "FAMILY_SAMPLES", "TRAINING_FAMILY",
           "VALIDATION_TASKS"]
