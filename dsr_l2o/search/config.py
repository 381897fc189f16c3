"""Search settings: defaults in ``searches/default.yaml``, overridable by a config file and flags."""

from __future__ import annotations

import copy
import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..resources import data_path
from ..workers import workers_setting


def _read(path: Path) -> dict[str, Any]:
    """The settings of a YAML file, read like a grammar (line numbers, no tags or aliases)."""
    from ..grammar.yaml_lines import YamlDocument

    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass a YAML file of search settings")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    data = YamlDocument(text, str(path), ConfigError, "a search config").read() or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a YAML mapping of setting: value")
    return data


DEFAULTS_PATH = data_path("searches", "default.yaml")
_DEFAULTS = _read(DEFAULTS_PATH)


def _default(key: str):
    """The packaged default of ``key`` (``searches/default.yaml``: the one source of defaults)."""
    value = _DEFAULTS[key]
    return field(default_factory=lambda: copy.deepcopy(value)) if isinstance(value, (list, dict)) else field(default=value)


@dataclass
class SearchConfig:
    """Every setting of a search; defaults come from the packaged ``searches/default.yaml``, where
    each key is explained. ``dsr-l2o search`` writes the resolved copy to ``config.yaml``."""

    grammar: str | None = _default("grammar")
    tasks: str = _default("tasks")
    validation_tasks: list[str] = _default("validation_tasks")
    depth: int = _default("depth")
    meta_steps: int = _default("meta_steps")
    unroll: int = _default("unroll")
    horizon: int = _default("horizon")
    meta_lr: float = _default("meta_lr")
    init_lr: float = _default("init_lr")
    temperature_start: float = _default("temperature_start")
    temperature_end: float = _default("temperature_end")
    estimator: str = _default("estimator")
    population: int = _default("population")
    population_lrs: list[float] = _default("population_lrs")
    risk_quantile: float = _default("risk_quantile")
    relaxation: str = _default("relaxation")
    second_order: bool = _default("second_order")
    recompute_segment: int = _default("recompute_segment")
    meta_batch: int = _default("meta_batch")
    dist_timeout: float = _default("dist_timeout")
    root_norm: bool = _default("root_norm")
    normalize: bool = _default("normalize")
    init_bias: float = _default("init_bias")
    descent_prior: float = _default("descent_prior")
    entropy_weight: float = _default("entropy_weight")
    grad_clip: float = _default("grad_clip")
    seed: int = _default("seed")
    device: str = _default("device")
    checkpoint_every: int = _default("checkpoint_every")
    top_k: int = _default("top_k")
    tie_tasks: int = _default("tie_tasks")
    workers: int | str = _default("workers")
    eval_lrs: list[float] | None = _default("eval_lrs")
    eval_seeds: list[int] = _default("eval_seeds")
    eval_steps: int | None = _default("eval_steps")
    grow: bool = _default("grow")
    grow_tasks: str = _default("grow_tasks")
    grow_episodes: int = _default("grow_episodes")
    grow_steps: int = _default("grow_steps")
    grow_constants: list[float] = _default("grow_constants")
    grow_keep: int = _default("grow_keep")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def truncations(self) -> int:
        """Meta-steps per episode."""
        return self.horizon // self.unroll


ESTIMATORS = ("truncated_backprop", "population")
_FIELDS = {f.name: f for f in dataclasses.fields(SearchConfig)}


def _check(config: SearchConfig, origin: str) -> SearchConfig:
    def bad(key, why):
        raise ConfigError(f"{origin}: {key}: {why}")

    for key in ("depth", "meta_steps", "unroll", "horizon", "checkpoint_every", "top_k", "grow_episodes",
                "grow_steps", "grow_keep"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad(key, f"must be a whole number >= 1, got {value!r}")
    for key in ("recompute_segment", "meta_batch", "tie_tasks"):
        value, low = getattr(config, key), 1 if key == "meta_batch" else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            bad(key, f"must be a whole number >= {low}, got {value!r}")
    if isinstance(config.dist_timeout, bool) or not isinstance(config.dist_timeout, (int, float)) \
            or not config.dist_timeout > 0:
        bad("dist_timeout", f"must be a positive number of seconds, got {config.dist_timeout!r}")
    if workers_setting(config.workers) is None:
        bad("workers", f"must be auto or a whole number >= 1, got {config.workers!r}")
    if config.depth > 4:
        bad("depth", "at most 4 (a depth-4 tree already has 15 mixed nodes)")
    if config.horizon % config.unroll:
        bad("horizon", f"must be a multiple of unroll ({config.unroll})")
    for key in ("meta_lr", "init_lr", "temperature_start", "temperature_end", "grad_clip"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            bad(key, f"must be a positive number, got {value!r}")
    if not isinstance(config.entropy_weight, (int, float)) or config.entropy_weight < 0:
        bad("entropy_weight", "must be a number >= 0")
    if config.estimator not in ESTIMATORS:
        bad("estimator", f"must be one of {', '.join(ESTIMATORS)}")
    if isinstance(config.population, bool) or not isinstance(config.population, int) or config.population < 2:
        bad("population", f"must be a whole number >= 2, got {config.population!r}")
    lrs = config.population_lrs
    if not isinstance(lrs, list) or not lrs or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in lrs):
        bad("population_lrs", "must be a non-empty list of positive learning rates")
    if isinstance(config.risk_quantile, bool) or not isinstance(config.risk_quantile, (int, float)) \
            or not 0 <= config.risk_quantile < 1:
        bad("risk_quantile", "must be a number from 0 (leave-one-out baseline) to below 1")
    if config.relaxation not in ("sampled", "soft"):
        bad("relaxation", "must be 'sampled' or 'soft'")
    if config.device not in ("auto", "cpu", "cuda") and not str(config.device).startswith("cuda:"):
        bad("device", "must be auto, cpu or cuda")
    if config.eval_lrs is not None and (not isinstance(config.eval_lrs, list) or not config.eval_lrs or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in config.eval_lrs)):
        bad("eval_lrs", "must be null (the evaluation's grid) or a non-empty list of positive learning rates")
    if not isinstance(config.eval_seeds, list) or not config.eval_seeds or not all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in config.eval_seeds):
        bad("eval_seeds", "must be a non-empty list of whole numbers >= 0, e.g. [0]")
    if config.eval_steps is not None and (isinstance(config.eval_steps, bool) or not isinstance(config.eval_steps, int)
                                          or config.eval_steps < 1):
        bad("eval_steps", f"must be null (each task's own) or a whole number >= 1, got {config.eval_steps!r}")
    names = config.validation_tasks
    if names is not None and (not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names)):
        bad("validation_tasks", "must be a list of task names, e.g. [val_cnn, val_valley] (null or []: the built-in "
                                "validation tasks)")
    if not isinstance(config.tasks, str) or not config.tasks.strip():
        bad("tasks", "must be the name of a task family, e.g. suite")
    if config.grammar is not None and not isinstance(config.grammar, str):
        bad("grammar", "must be a packaged grammar's name or a YAML file's path")
    for key in ("second_order", "root_norm", "normalize"):
        if not isinstance(getattr(config, key), bool):
            bad(key, f"must be true or false, got {getattr(config, key)!r}")
    for key in ("init_bias", "descent_prior"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            bad(key, f"must be a number, got {value!r}")
    if not isinstance(config.grow, bool):
        bad("grow", f"must be true or false, got {config.grow!r}")
    if not isinstance(config.grow_tasks, str) or not config.grow_tasks.strip():
        bad("grow_tasks", "must be the name of a quadratic task family, e.g. hard_quadratics")
    constants = config.grow_constants
    if not isinstance(constants, list) or not constants or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 100 for v in constants):
        bad("grow_constants", "must be a non-empty list of numbers between 0 and 100, e.g. [0.2, 0.5]")
    if not isinstance(config.seed, int) or isinstance(config.seed, bool):
        bad("seed", "must be a whole number")
    return config


def requested_setting(key: str, path: str | Path | None = None, **overrides) -> Any:
    """The value of ``key`` that ``overrides`` or the YAML file ``path`` set (``None`` where only
    the packaged defaults do)."""
    if overrides.get(key) is not None:
        return overrides[key]
    return _read(Path(path)).get(key) if path is not None else None


def load_config(path: str | Path | None = None, **overrides) -> SearchConfig:
    """Defaults from ``searches/default.yaml``, then ``path`` (YAML), then non-None ``overrides``."""
    merged: dict[str, Any] = dict(_read(Path(path))) if path is not None else {}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    origin = str(path) if path else "search settings"
    for key in merged:
        if key not in _FIELDS:
            raise ConfigError(f"{origin}: {key}: unknown setting; known settings: {', '.join(_FIELDS)}")
    try:
        config = SearchConfig(**merged)
    except TypeError as err:
        raise ConfigError(f"{origin}: {err}") from None
    return _check(config, origin)
