"""``module:attr`` specs: the one place user code is imported by name (optimizers, tasks)."""

from __future__ import annotations

import importlib
import re

from .errors import DsrError

_DOTTED = r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*"
SPEC = re.compile(rf"({_DOTTED}):({_DOTTED})")
"""A ``module.path:attr.path`` spec."""


def first_line(err: BaseException) -> str:
    """``Type: first line of the message`` of an exception."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0]}" if text else type(err).__name__


def import_attr(spec: str, what: str, error: type[DsrError], malformed: str):
    """The object ``"module:attr"`` names; one-line ``error``s (``malformed`` when the spec has
    the wrong shape) that start with ``what`` and the spec."""
    match = SPEC.fullmatch(spec.strip())
    if not match:
        raise error(malformed)
    module_name, attr_path = match.groups()
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise error(f"{what} {spec!r}: cannot import module {module_name!r} ({first_line(err)}); "
                    "check the name and that it is installed or on PYTHONPATH") from None
    except Exception as err:  # the user's module failed while importing
        raise error(f"{what} {spec!r}: importing {module_name!r} raised {first_line(err)}") from None
    obj = module
    for part in attr_path.split("."):
        if not hasattr(obj, part):
            raise error(f"{what} {spec!r}: module {module_name!r} has no attribute {attr_path!r}")
        obj = getattr(obj, part)
    return obj
