"""Look up tasks and families by name.

Defaults for the search:

* ``TRAINING_FAMILY = "mixed"``: meta-training samples from the uniform mixture of the
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


def get_family(spec):
    """A task family: a built-in name, ``"a+b"`` or a list of names (uniform mixture)."""
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
