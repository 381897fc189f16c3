"""Independent jobs (one per task) over forked worker processes, with the values of one process.

Each job runs whole in one process with the same code and the same single torch thread, so a
value does not depend on how many workers there are or which one ran it. Workers are forked
(they inherit the tasks, formulas and imports; nothing is pickled but the results), so this
needs the ``fork`` start method, no CUDA context and one torch thread; otherwise the jobs run
here, one by one.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Callable, Sequence, TypeVar

import torch

from .errors import ConfigError, DsrError

T = TypeVar("T")
R = TypeVar("R")

_JOB: tuple[Callable, Sequence] | None = None


def cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def workers_setting(value) -> int | str | None:
    """A ``workers`` value as ``auto`` or a count >= 1 (a flag's digits are read as a count);
    ``None`` when it is neither."""
    if value == "auto":
        return value
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 1 else None


def workers_flag(text: str | None) -> int | str | None:
    """The value of a ``--workers`` flag (``None`` when it is not given), or a one-line error."""
    if text is None:
        return None
    value = workers_setting(text)
    if value is None:
        raise ConfigError(f"--workers must be auto or a whole number >= 1, got {text!r}")
    return value


def resolve_workers(setting, device: torch.device, world: int = 1) -> int:
    """The worker count for a ``workers`` setting: ``auto`` is one per core on CPU in a single
    process, else 1 (a CUDA context and a torch.distributed group are not forked)."""
    if device.type != "cpu" or world > 1:
        return 1
    return cores() if setting == "auto" else int(setting)


def can_fork() -> bool:
    """Whether workers can be forked here: the ``fork`` start method, no CUDA context, one torch
    thread (a forked copy of a running thread pool can hang) and not a daemonic process (which
    may not have children)."""
    return ("fork" in multiprocessing.get_all_start_methods() and not torch.cuda.is_initialized()
            and torch.get_num_threads() == 1 and not multiprocessing.current_process().daemon)


def map_jobs(job: Callable[[T], R], items: Sequence[T], workers: int,
             on_done: Callable[[int], None] | None = None) -> list[R]:
    """``[job(x) for x in items]``, shared among up to ``workers`` forked processes;
    ``on_done(i)`` is called here as each job ends (a progress bar).

    Ctrl-C while the workers run stops them and raises :class:`KeyboardInterrupt` here. (The
    interrupt is recorded by a handler and raised once the pool is torn down: raised where the
    pool's clean-up code happens to run, Python would drop it.)"""
    global _JOB
    workers = min(int(workers), len(items))
    if workers <= 1 or not can_fork():
        results = []
        for i, item in enumerate(items):
            results.append(job(item))
            if on_done is not None:
                on_done(i)
        return results
    _JOB = (job, items)
    interrupted: list[int] = []
    previous = _record_interrupts(interrupted)
    try:
        with warnings.catch_warnings(), ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("fork"), initializer=_worker_start) as pool:
            # Python >= 3.12 warns about forking a process with threads; the workers only run jobs
            warnings.filterwarnings("ignore", message=".*fork.*", category=DeprecationWarning)
            futures = [pool.submit(_run, i) for i in range(len(items))]
            reported: set[int] = set()
            while not interrupted and len(reported) < len(futures):
                wait(futures, timeout=0.05, return_when=FIRST_EXCEPTION)
                done = [i for i, f in enumerate(futures) if f.done() and i not in reported]
                if any(futures[i].exception() is not None for i in done):
                    break
                for i in done:
                    reported.add(i)
                    if on_done is not None:
                        on_done(i)
            if interrupted:
                for future in futures:
                    future.cancel()
                _stop(pool)
            else:
                results = [f.result() for f in futures]
    except BrokenProcessPool:
        if not interrupted:
            raise DsrError(f"a worker process ended abruptly (out of memory?) while {len(items)} jobs ran in "
                           f"{workers} processes; rerun with workers: 1") from None
    finally:
        _JOB = None
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    if interrupted:
        raise KeyboardInterrupt
    return results


def _record_interrupts(record: list):
    """Make SIGINT append to ``record``; returns the previous handler (``None`` where this is
    not the main thread or SIGINT is not handled by Python, when nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        return None
    signal.signal(signal.SIGINT, lambda signum, frame: record.append(signum))
    return previous


def _stop(pool: ProcessPoolExecutor) -> None:
    """End the pool's workers now (their jobs' results are not needed)."""
    for process in list(getattr(pool, "_processes", {}).values()):
        process.terminate()


def _worker_start() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops the pool


def _run(index: int):
    job, items = _JOB
    return job(items[index])
