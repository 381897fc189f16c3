"""Look up tasks and families by name.

Defaults for the search:

* ``TRAINING_FAMILY = "mixed"
FAMILY_SAMPLES = 3``: meta-training samples from the uniform mixture of the
  ``quadratics``, ``mlp_digits``, ``logreg`` and ``rosenbrock`` families.
* ``VALIDATION_TASKS``: built-in tasks held out from meta-training. None of them can be drawn by
  a training family: the quadratics are 20-d (families skip dim 20) with condition 1e4 or noise
  0.5 (outside the sampled ranges), Rosenbrock is 2-d with curvature 100 (families: dim 3-8,
  curvature 5-50), the MLPs have 32 hidden units (families skip 32), breast_cancer is never a
  training dataset and no family contains a CNN.

The task suite (:mod:`dsr_l2o.tasks.suite`) adds three disjoint sets of tasks of the kinds users
train: the meta-training family ``suite``, :data:`SUITE_VALIDATION` (``val_*``, used to select)
and :data:`SUITE_TEST` (``test_*``, used only to report); its module docstring says why they
cannot overlap. :func:`get_task` resolves their names too.
"""

from __future__ import annotations

from ..errors import TaskError
from .builtin import BUILTIN_TASKS
from .families import MixtureFamily, builtin_families
from .suite import SUITE_CONFIGS, SUITE_TEST, SUITE_VALIDATION, get_suite_task

TRAINING_FAMILY = "mixed"
FAMILY_SAMPLES = 3
VALIDATION_TASKS = ("quadratic_illcond", "noisy_quadratic", "rosenbrock_2d", "logreg_cancer",
                    "mlp_digits_tanh", "mlp_digits_relu", "cnn_digits")


def get_task(spec: str):
    """A fresh task: a built-in name (see :func:`list_tasks`) or ``"module:attr"``."""
    if not isinstance(spec, str) or not spec.strip():
        raise TaskError(f"task spec must be a non-empty string, got {spec!r}")
    spec = spec.strip()
    if ":" in spec:
        from .loader import load_user_task

        return load_user_task(spec)
    if spec in SUITE_CONFIGS:
        return get_suite_task(spec)
    if spec not in BUILTIN_TASKS:
        raise TaskError(f"unknown task {spec!r}; known tasks: {', '.join(BUILTIN_TASKS)}, the "
                        "suite's val_* and test_* tasks (see dsr-l2o tasks) (or give 'module:attr')")
    return BUILTIN_TASKS[spec][0]()


def get_tasks(specs, family_samples: int = FAMILY_SAMPLES) -> list:
    """Fresh tasks for a list of specs: built-in task names, built-in family names, a task set of
    :func:`task_sets` (``suite_test``: the suite's test tasks), or ``"module:attr"`` naming a task
    or a :class:`~.base.TaskFamily`; a family contributes ``family.sample(seed)`` for seeds
    ``0 .. family_samples - 1``."""
    from .base import is_family
    from .loader import load_user_task

    if isinstance(family_samples, bool) or not isinstance(family_samples, int) or family_samples < 1:
        raise TaskError(f"family samples must be a positive integer, not {family_samples!r}")
    tasks, origin = [], {}
    sets = task_sets()
    specs = [name for spec in specs for name in sets.get(str(spec).strip(), (spec,))]
    for spec in specs:
        spec = str(spec).strip()
        if ":" in spec:
            obj = load_user_task(spec, allow_family=True)
        elif spec in builtin_families() and spec not in BUILTIN_TASKS:
            obj = builtin_families()[spec]
        else:
            obj = get_task(spec)
        drawn = [_sample(obj, spec, seed) for seed in range(family_samples)] if is_family(obj) else [obj]
        for seed, task in enumerate(drawn):
            if task.name in origin:
                raise TaskError(f"task name {task.name!r} comes twice ({origin[task.name]} and {spec!r}"
                                + (f", seed {seed}" if len(drawn) > 1 else "") + "); list each task once and "
                                "make a family's sample(seed) give each seed its own name")
            origin[task.name] = repr(spec) + (f", seed {seed}" if len(drawn) > 1 else "")
        tasks += drawn
    return tasks


def task_sets() -> dict[str, tuple[str, ...]]:
    """Named sets of built-in tasks: the suite's validation and test tasks, the built-in validation tasks."""
    from .suite import SUITE_TEST, SUITE_VALIDATION

    return {"suite_validation": SUITE_VALIDATION, "suite_test": SUITE_TEST, "validation": VALIDATION_TASKS}


def _sample(family, spec: str, seed: int):
    from .base import TASK_MEMBERS, is_task, missing_task_members

    try:
        task = family.sample(seed)
    except TaskError:
        raise
    except Exception as err:
        raise TaskError(f"family {spec!r}: sample({seed}) raised {type(err).__name__}: {err}") from None
    if not is_task(task):
        raise TaskError(f"family {spec!r}: sample({seed}) returned a {type(task).__name__}, not a task "
                        f"(missing or wrong: {', '.join(missing_task_members(task))}; a task needs "
                        f"{', '.join(TASK_MEMBERS)})")
    return task


def get_family(spec):
    """A task family: a built-in name, ``"a+b"`` or a list of names (uniform mixture), or
    ``"module:attr"`` naming a user's family, or a user's task (then every draw is that task)."""
    if isinstance(spec, str) and ":" in spec:
        from .base import is_family
        from .families import SingleTaskFamily
        from .loader import load_user_task

        obj = load_user_task(spec.strip(), allow_family=True)
        return obj if is_family(obj) else SingleTaskFamily(obj)
    names = spec if isinstance(spec, (list, tuple)) else str(spec).split("+")
    names = [str(n).strip() for n in names]
    families = builtin_families()
    unknown = [n for n in names if n not in families]
    if not names or unknown:
        raise TaskError(f"unknown task family {', '.join(map(repr, unknown)) or repr(spec)}; "
                        f"known families: {', '.join(families)} (combine with '+')")
    if len(names) == 1:
        return families[names[0]]
    return MixtureFamily("+".join(names), [families[n] for n in names])


def list_tasks() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every built-in task."""
    return [(name, description) for name, (_, description) in BUILTIN_TASKS.items()]


def list_suite_tasks() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of the suite's validation tasks, then its test tasks."""
    return [(name, SUITE_CONFIGS[name].describe()) for name in SUITE_VALIDATION + SUITE_TEST]


def list_families() -> list[tuple[str, str]]:
    """``(name, one-line description)`` of every built-in family."""
    return [(f.name, f.description) for f in builtin_families().values()]
