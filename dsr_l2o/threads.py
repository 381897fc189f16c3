"""Thread pinning: the tasks are tiny, so intra-op threads cost more than they give."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def single_thread(active: bool = True) -> Iterator[None]:
    """Run the body with one torch intra-op thread (when ``active``), then restore the count."""
    threads = torch.get_num_threads()
    if active:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
