"""Load a user task (or task family) from a ``module:attr`` spec."""

from __future__ import annotations

import importlib
import re

from ..errors import TaskError
from .base import TASK_MEMBERS, is_family, is_task, missing_task_members

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
_SPEC = re.compile(rf"({_DOTTED}):({_DOTTED})")


def load_user_task(spec: str, allow_family: bool = False):
    """The Task named by ``module:attr``: a task object, or a zero-argument factory (or class)
    returning one. With ``allow_family`` a :class:`~.base.TaskFamily` (or its factory) is
    returned as well."""
    match = _SPEC.fullmatch(spec.strip())
    if not match:
        raise TaskError(f"bad task spec {spec!r}: expected a built-in name or 'module:attr' "
                        "(e.g. 'mypkg.tasks:make_task')")
    module_name, attr_path = match.groups()
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise TaskError(f"task spec {spec!r}: cannot import module {module_name!r} ({err}); "
                        "check the name and that it is on PYTHONPATH") from None
    except Exception as err:  # the user's module failed while importing
        raise TaskError(f"task spec {spec!r}: importing {module_name!r} raised "
                        f"{type(err).__name__}: {err}") from None
    obj = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise TaskError(f"task spec {spec!r}: module {module_name!r} has no attribute "
                            f"{attr_path!r}")
        obj = getattr(obj, part)
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
