"""Meta-training over several processes with ``torch.distributed`` (gloo on CPU, NCCL on CUDA).

A run is distributed when it is started by ``torchrun`` (or ``dsr-l2o search --nproc N``, which
starts N processes the way ``torchrun`` does: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT`` in the environment). Every process builds the same
relaxation from the same settings; the work of a meta-step is then split, never duplicated in
its result:

* truncated back-propagation: the ``meta_batch`` tasks of a meta-step are dealt out (task ``b``
  to process ``b mod N``) and the sum of their meta-gradients is all-reduced
  (:func:`all_sum`), so N processes apply the mean over the same tasks one process would;
* the population gradient: every process samples the same formulas (same seeds), scores its
  share of them (:func:`shared_map`), and the rewards are all-reduced, so every process computes
  the risk-seeking quantile over all of them and the same score-function gradient.

Only process 0 writes (config, metrics, checkpoints, result). A process that dies or hangs makes
the others fail their next collective within ``dist_timeout`` seconds with a one-line
:class:`DistributedError`, not a hang.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist

from ..errors import DistributedError

TRAFFIC = {"all_reduces": 0, "bytes": 0}
"""All-reduces this process took part in and the bytes it contributed (read by benchmarks/distributed.py)."""

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world() -> int:
    """The number of processes (1 when not distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_writer() -> bool:
    """True in the one process that writes the run directory (rank 0)."""
    return rank() == 0


def env_rank() -> int:
    """``RANK`` of the environment (``torchrun`` sets it); 0 when absent."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        raise DistributedError(f"RANK={os.environ['RANK']!r} is not a whole number; "
                               "start the run with torchrun or dsr-l2o search --nproc N") from None


def requested_world() -> int:
    """``WORLD_SIZE`` of the environment (``torchrun`` sets it); 1 when absent."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise DistributedError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not a whole number; "
                               "start the run with torchrun or dsr-l2o search --nproc N") from None


def local_device(device: torch.device) -> torch.device:
    """The GPU of this process (``cuda:LOCAL_RANK``) when meta-training on CUDA, else ``device``."""
    if device.type == "cuda" and requested_world() > 1:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return device


@contextmanager
def session(device: torch.device, timeout: float) -> Iterator[None]:
    """Join the process group the environment describes for the duration of the block (nothing
    when ``WORLD_SIZE`` is 1 or a group is already joined)."""
    size = requested_world()
    if size <= 1 or dist.is_initialized():
        yield
        return
    missing = [key for key in ENV_KEYS if key not in os.environ and key != "LOCAL_RANK"]
    if missing:
        raise DistributedError(f"WORLD_SIZE is {size} but {', '.join(missing)} is not set; start the run with "
                               "torchrun --nproc-per-node N -m dsr_l2o search ... or dsr-l2o search --nproc N")
    backend = "nccl" if device.type == "cuda" else "gloo"
    where = f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']}"
    try:
        dist.init_process_group(backend, timeout=_dt.timedelta(seconds=float(timeout)))
    except Exception as err:
        raise DistributedError(f"process {os.environ['RANK']} of {size} could not join the others at {where} "
                               f"within {timeout:g} s ({_first_line(err)}); check that every process was started "
                               "with the same --nnodes/--nproc-per-node and rendezvous address") from None
    try:
        yield
    finally:
        dist.destroy_process_group()


def _collective(what: str, call: Callable[[], object]):
    try:
        return call()
    except Exception as err:
        raise DistributedError(f"process {rank()} of {world()} lost the others during {what} ({_first_line(err)}); "
                               "another process died or hung (see its message); continue with --resume") from None


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over the processes in place (a no-op in one process)."""
    if world() > 1:
        _count(tensor)
        _collective("a meta-gradient all-reduce", lambda: dist.all_reduce(tensor, op=dist.ReduceOp.SUM))
    return tensor


def _count(tensor: torch.Tensor) -> None:
    TRAFFIC["all_reduces"] += 1
    TRAFFIC["bytes"] += tensor.numel() * tensor.element_size()


def broadcast(tensors: Sequence[torch.Tensor]) -> None:
    """Overwrite ``tensors`` with process 0's values (a no-op in one process)."""
    if world() > 1:
        flat = torch.cat([t.detach().reshape(-1) for t in tensors])
        _collective("the start-up broadcast", lambda: dist.broadcast(flat, src=0))
        offset = 0
        with torch.no_grad():
            for t in tensors:
                t.copy_(flat[offset:offset + t.numel()].view_as(t))
                offset += t.numel()


def check_same(what: str, value) -> None:
    """Raise :class:`DistributedError` unless every process holds the same ``value`` (plain data)."""
    if world() > 1:
        values: list = [None] * world()
        _collective("the start-up check", lambda: dist.all_gather_object(values, value))
        odd = [r for r, v in enumerate(values) if v != values[0]]
        if odd:
            raise DistributedError(f"process {odd[0]} was started with other {what} than process 0; "
                                   "start every process with the same command line and files")


def align(trainer) -> None:
    """Before the first meta-step: check every process has the same settings and progress, and
    give every process process 0's relaxation (a no-op in one process)."""
    check_same("settings", trainer.config.to_dict())
    check_same("checkpoint progress", vars(trainer.state).copy() | {"seconds": 0.0})
    broadcast(list(trainer.rule.parameters()))


def share(count: int) -> range:
    """The contiguous block of ``range(count)`` this process handles (blocks differ by at most one)."""
    size, me = world(), rank()
    return range(count * me // size, count * (me + 1) // size)


def shared_map(score: Callable[[list], np.ndarray], items: list, *args, device=None) -> np.ndarray:
    """``score(items, *args)`` (one value per item, float64), with each process scoring only its
    :func:`share` of ``items``; the values are all-reduced, so every process returns all of them
    in ``items``' order. In one process it is just ``score(items, *args)``."""
    if world() <= 1:
        return np.asarray(score(items, *args), dtype=np.float64)
    block = share(len(items))
    full = torch.zeros(len(items), dtype=torch.float64)
    if len(block):
        full[block.start:block.stop] = torch.as_tensor(np.asarray(score(items[block.start:block.stop], *args),
                                                                  dtype=np.float64))
    on = full.to(device) if device is not None and torch.device(device).type == "cuda" else full
    _count(on)
    _collective("the reward all-reduce", lambda: dist.all_reduce(on, op=dist.ReduceOp.SUM))
    return on.cpu().numpy()


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    line = re.sub(r"^\[[^\]]*\]\s*", "", text[0]) if text else type(err).__name__  # gloo's source location
    return line if len(line) <= 160 else line[:157] + "..."
