"""Load a user task (or task family) from a ``module:attr`` spec."""

from __future__ import annotations

from ..errors import TaskError
from ..imports import import_attr
from .base import TASK_MEMBERS, is_family, is_task, missing_task_members


def load_user_task(spec: str, allow_family: bool = False):
    """The Task named by ``module:attr``: a task object, or a zero-argument factory (or class)
    returning one. With ``allow_family`` a :class:`~.base.TaskFamily` (or its factory) is
    returned as well."""
    obj = import_attr(spec, "task spec", TaskError, f"bad task spec {spec!r}: expected a built-in name or "
                      "'module:attr' (e.g. 'mypkg.tasks:make_task')")

    def accepted(value) -> bool:
        return is_task(value) or (allow_family and is_family(value))

    if not accepted(obj):
        if not callable(obj):
            raise _not_a_task(spec, obj)
        try:
            obj = obj()
        except Exception as err:
            raise TaskError(f"task spec {spec!r}: calling the factory raised "
                            f"{type(err).__name__}: {err} (factories take no arguments)") from None
    if not accepted(obj):
        raise _not_a_task(spec, obj)
    return obj


def _not_a_task(spec, obj) -> TaskError:
    missing = missing_task_members(obj)
    return TaskError(f"task spec {spec!r}: {type(obj).__name__} object is not a task (missing or "
                     f"wrong: {', '.join(missing)}); a task needs {', '.join(TASK_MEMBERS)} "
                     "(a family: name and sample(seed))")
