"""A wall-clock budget for symbolic work (sympy can take minutes on short, valid formulas).

``with time_budget(5):`` raises :class:`BudgetExceeded` inside the block once 5 s have passed.
It uses ``SIGALRM`` and so works in the main thread of a Unix process whose own interval timer
is not running; elsewhere (threads, Windows, a program with its own alarm) the block runs
unbounded and the size limits of :mod:`dsr_l2o.limits` are the bound.
Budgets nest: an inner budget never outlasts an outer one.
"""

from __future__ import annotations

import signal
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

SYMBOLIC_SECONDS = 3.0
"""Default budget of one symbolic step (the sympy form, simplify, LaTeX) before it falls back."""

T = TypeVar("T")
_deadlines: list[float] = []


class BudgetExceeded(Exception):
    """A :func:`time_budget` ran out (deliberately not a DsrError: callers fall back, never report)."""


def _can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def _on_alarm(signum, frame):
    if _deadlines and time.monotonic() >= _deadlines[-1] - 1e-3:
        signal.setitimer(signal.ITIMER_REAL, 0.05)  # again, should sympy swallow this one
        raise BudgetExceeded()
    _arm()


def _arm() -> None:
    if _deadlines:
        signal.setitimer(signal.ITIMER_REAL, max(_deadlines[-1] - time.monotonic(), 1e-3))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


@contextmanager
def time_budget(seconds: float) -> Iterator[None]:
    """Run the block for at most ``seconds`` (raises :class:`BudgetExceeded` when it is spent)."""
    if not _can_alarm() or (not _deadlines and signal.getitimer(signal.ITIMER_REAL)[0] > 0):
        yield  # no SIGALRM here, or the program runs its own timer: leave it alone
        return
    deadline = time.monotonic() + seconds
    if _deadlines:
        deadline = min(deadline, _deadlines[-1])
    previous = signal.getsignal(signal.SIGALRM) if not _deadlines else None
    if not _deadlines:
        signal.signal(signal.SIGALRM, _on_alarm)
    _deadlines.append(deadline)
    _arm()
    try:
        yield
    finally:
        _deadlines.pop()
        _arm()
        if not _deadlines:
            signal.signal(signal.SIGALRM, previous if previous is not None else signal.SIG_DFL)


def within_budget(work: Callable[[], T], fallback: Callable[[], T], what: str,
                  seconds: float = SYMBOLIC_SECONDS) -> T:
    """``work()`` within ``seconds``; if it runs out or sympy fails, warn and return ``fallback()``."""
    try:
        with time_budget(seconds):
            return work()
    except BudgetExceeded:
        reason = f"took longer than {seconds:g} s"
    except (RecursionError, MemoryError, OverflowError, ValueError, TypeError, ZeroDivisionError) as err:
        reason = f"failed in sympy ({type(err).__name__})"
    warnings.warn(f"{what} {reason}; using the unsimplified formula", RuntimeWarning, stacklevel=2)
    return fallback()
