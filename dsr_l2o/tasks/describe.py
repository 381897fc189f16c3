"""Plain-text listings of the tasks and families (used by ``dsr-l2o tasks``)."""

from __future__ import annotations

from .base import is_family, task_seed
from .registry import (TRAINING_FAMILY, VALIDATION_TASKS, get_family, get_task, list_families,
                       list_suite_tasks, list_tasks)
from .suite import SUITE_TEST, SUITE_VALIDATION

EXAMPLES = 3


def overview() -> str:
    """One line per built-in task and family; validation tasks and the training family marked."""
    tasks, families, suite = list_tasks(), list_families(), dict(list_suite_tasks())
    width = max(len(name) for name, _ in tasks + families + list(suite.items()))
    lines = ["Tasks (* = validation task):"]
    lines += [f"  {name:<{width}} {'*' if name in VALIDATION_TASKS else ' '} {text}"
              for name, text in tasks]
    lines.append("Suite validation tasks (select on these; meta-training family: suite):")
    lines += [f"  {name:<{width}}   {suite[name]}" for name in SUITE_VALIDATION]
    lines.append("Suite test tasks (report only; never used to select):")
    lines += [f"  {name:<{width}}   {suite[name]}" for name in SUITE_TEST]
    lines.append(f"Families (default training family: {TRAINING_FAMILY}):")
    lines += [f"  {name:<{width}}   {text}" for name, text in families]
    return "\n".join(lines)


def describe(spec: str) -> str:
    """Details of one task (built-in or ``module:attr``) or family."""
    if spec in dict(list_families()) or "+" in spec:
        return _describe_family(get_family(spec))
    if ":" in spec:
        from .loader import load_user_task

        obj = load_user_task(spec, allow_family=True)
        return _describe_family(obj) if is_family(obj) else _describe_task(obj)
    return _describe_task(get_task(spec))


def _describe_task(task) -> str:
    params = task.init(0)
    shapes = ", ".join("x".join(map(str, p.shape)) or "scalar" for p in params)
    lines = [f"task {task.name}"]
    if getattr(task, "description", ""):
        lines.append(f"  {task.description}")
    seed = task_seed(task)
    lines += [f"  steps: {task.steps} (default horizon)",
              f"  data seed: {'none (the init seed only)' if seed is None else seed}",
              f"  parameters: {sum(p.numel() for p in params)} in {len(params)} tensors ({shapes})"]
    if getattr(task, "x_train", None) is not None:
        lines.append(f"  train examples: {len(task.x_train)}, batch size {task.batch_size}")
    if getattr(task, "x_test", None) is not None:
        lines.append(f"  test examples: {len(task.x_test)}")
    lines.append(f"  initial loss (init seed 0, step 0): {float(task.loss(params, 0)):.4g}")
    if task.name in VALIDATION_TASKS:
        lines.append("  held out from meta-training (validation task)")
    if task.name in SUITE_VALIDATION:
        lines.append("  suite validation task: used to select, never drawn by the suite family")
    if task.name in SUITE_TEST:
        lines.append("  suite test task: used only to report, never drawn by the suite family")
    return "\n".join(lines)


def _describe_family(family) -> str:
    lines = [f"family {family.name}"]
    if getattr(family, "description", ""):
        lines.append(f"  {family.description}")
    lines.append("  examples:")
    lines += [f"    seed {seed}: {family.sample(seed).name}" for seed in range(EXAMPLES)]
    return "\n".join(lines)
