"""Tuned baseline results read back from a file, so a formula can be compared without re-tuning them.

``benchmarks/baselines.py`` (and any JSON of the same shape) stores ``protocol`` (what
:meth:`EvalProtocol.to_json` writes) and ``results`` (``{task: {baseline: TuneResult.to_json()}}``).
Under the same protocol a baseline's tuned result is the same on every run, so reusing it only
saves the time; a file tuned under another protocol is refused.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, ResultError
from .protocol import EvalProtocol, TuneResult

Known = dict[str, dict[str, TuneResult]]


def read_stored_results(path: str | Path, protocol: EvalProtocol) -> Known:
    """``results[task][baseline]`` of the file at ``path``, checked against ``protocol``."""
    from ..result import read_json

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file; pass a JSON of tuned baselines (benchmarks/baselines.py writes one)")
    data = read_json(path, "file of tuned baselines")
    results = data.get("results")
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
        raise ResultError(f"{path}: results: missing or not a mapping of task to baseline results; "
                          "write it with benchmarks/baselines.py")
    if data.get("protocol") != protocol.to_json():
        raise ConfigError(f"{path}: tuned under another protocol ({data.get('protocol')}); evaluate with the same "
                          "--lrs, --seeds, --steps and --extend-edges, or drop --baseline-results")
    known: Known = {}
    for task, per_task in results.items():
        for name, entry in per_task.items():
            try:
                known.setdefault(str(task), {})[str(name)] = TuneResult.from_json(entry)
            except (KeyError, TypeError, ValueError, AttributeError):
                raise ResultError(f"{path}: results: {task}: {name}: not a tuned result; "
                                  "write the file with benchmarks/baselines.py") from None
    return known
