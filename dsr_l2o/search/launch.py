"""``dsr-l2o search --nproc N``: start N local processes the way ``torchrun`` does and watch them.

Each process gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR=127.0.0.1`` and a free
``MASTER_PORT`` in its environment, then runs the target, which joins the group
(:func:`dsr_l2o.search.distributed.session`). When a process fails, the others get a few
seconds to end on their own (their next collective fails), are then stopped, and the launch
ends with one line naming the process that failed first.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import sys
import time
from multiprocessing.connection import wait
from typing import Callable

from ..errors import ConfigError, DistributedError, DsrError

GRACE_SECONDS = 10.0
"""How long the other processes may take to end on their own after one failed."""


def free_port() -> int:
    """A TCP port on localhost that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(nproc: int, target: Callable[..., object], kwargs: dict, start_method: str = "spawn",
           poll: float = 0.1) -> None:
    """Run ``target(**kwargs)`` in ``nproc`` processes joined as one ``torch.distributed`` group on
    this machine; raise :class:`DistributedError` when one of them fails (the others are stopped).

    ``start_method`` is :mod:`multiprocessing`'s: ``spawn`` (fresh interpreters, the safe default)
    or ``fork`` (inherits the imports; only from a process that has not started torch threads)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ConfigError(f"--nproc must be a whole number >= 1, got {nproc!r}")
    port = free_port()
    context = multiprocessing.get_context(start_method)
    processes = [context.Process(target=_entry, args=(rank, nproc, port, target, kwargs), name=f"dsr-l2o rank {rank}")
                 for rank in range(nproc)]
    for process in processes:
        process.start()
    try:
        failed = _watch(processes, poll)
    except KeyboardInterrupt:
        _stop(processes, GRACE_SECONDS)
        raise
    if failed is not None:
        rank, code = failed
        how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
        raise DistributedError(f"process {rank} of {nproc} {how}; the other processes were stopped "
                               "(continue from the last checkpoint with --resume)")


def _entry(rank: int, world: int, port: int, target, kwargs: dict) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), LOCAL_WORLD_SIZE=str(world),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    try:
        target(**kwargs)
    except DsrError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(getattr(err, "exit_code", 2))
    except KeyboardInterrupt:
        sys.exit(130)


def _watch(processes, poll: float) -> tuple[int, int] | None:
    """Wait for every process; on the first failure, stop the rest and return (rank, exit code).

    The wait wakes on each exit as it happens, so a process that ends because another died (its
    collective failed a moment later) is not mistaken for the first failure."""
    running = {process.sentinel: rank for rank, process in enumerate(processes)}
    while running:
        for sentinel in wait(list(running), timeout=poll):
            rank = running.pop(sentinel)
            processes[rank].join()
            code = processes[rank].exitcode
            if code != 0:
                _stop(processes, GRACE_SECONDS)
                return rank, code
    return None


def _stop(processes, grace: float) -> None:
    deadline = time.monotonic() + grace
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(5.0)
        if process.is_alive():
            process.kill()
            process.join()
