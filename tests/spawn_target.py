"""A target for the one test that starts processes with ``spawn``: it only reads its environment,
so the spawned interpreter pays for nothing but importing the launcher."""

import json
import os
from pathlib import Path

from dsr_l2o.errors import ConfigError

RENDEZVOUS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def write_environment_then_fail(out: str) -> None:
    """Write the rendezvous variables this process was given to ``out``, then end with a one-line error."""
    Path(out).write_text(json.dumps({name: os.environ[name] for name in RENDEZVOUS}))
    raise ConfigError("stopped on purpose")
