"""Search settings: defaults in ``searches/default.yaml``, overridable by a config file and flags."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError


@dataclass
class SearchConfig:
    """Every setting of a search. ``dsr-l2o search`` writes the resolved copy to ``config.yaml``."""

    grammar: str | None = None  # path; None = grammars/default.yaml
    tasks: str = "mixed"  # training task family
    validation_tasks: list[str] = field(default_factory=list)  # [] = the registry's validation set
    depth: int = 2
    meta_steps: int = 300
    unroll: int = 20  # truncation length K (inner steps per meta-step)
    horizon: int = 100  # inner steps per episode (a multiple of unroll)
    meta_lr: float = 0.05
    init_lr: float = 0.01
    temperature_start: float = 1.0
    temperature_end: float = 0.05
    relaxation: str = "sampled"  # "sampled" (straight-through Gumbel) or "soft" (weighted sums)
    second_order: bool = False  # back-propagate through the inner gradients too
    root_norm: bool = True  # divide the direction by the running max of its RMS in each episode
    normalize: bool = True  # divide mixture candidates by their RMS at each episode's first step
    init_bias: float = 0.0  # extra initial logit of identity / pass-through choices
    descent_prior: float = 0.0  # initial terminal logits = this * cosine(terminal, gradient)
    entropy_weight: float = 0.01  # final weight of the mean-entropy penalty (ramped up linearly)
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 25  # meta-steps (rounded up to an episode boundary)
    top_k: int = 4
    eval_lrs: list[float] | None = None  # None = the fair protocol's grid (dsr-l2o evaluate's)
    eval_seeds: list[int] = field(default_factory=lambda: [0])
    eval_steps: int | None = None
    grow: bool = False  # after the relaxation: try one-term corrections of its best formula
    grow_tasks: str = "hard_quadratics"  # quadratic family the corrections are ranked on
    grow_episodes: int = 12  # tasks drawn from grow_tasks
    grow_steps: int = 200  # steps per grow run
    grow_constants: list[float] = field(default_factory=lambda: [0.2, 0.5])  # |c| tried, both signs
    grow_keep: int = 3  # best corrections scored on the validation tasks

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def truncations(self) -> int:
        """Meta-steps per episode."""
        return self.horizon // self.unroll


_FIELDS = {f.name: f for f in dataclasses.fields(SearchConfig)}


def _check(config: SearchConfig, origin: str) -> SearchConfig:
    def bad(key, why):
        raise ConfigError(f"{origin}: {key}: {why}")

    for key in ("depth", "meta_steps", "unroll", "horizon", "checkpoint_every", "top_k", "grow_episodes",
                "grow_steps", "grow_keep"):
        value = getattr(config, key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            bad(key, f"must be a whole number >= 1, got {value!r}")
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
    if config.relaxation not in ("sampled", "soft"):
        bad("relaxation", "must be 'sampled' or 'soft'")
    if config.device not in ("auto", "cpu", "cuda") and not str(config.device).startswith("cuda:"):
        bad("device", "must be auto, cpu or cuda")
    if config.eval_lrs is not None and (not isinstance(config.eval_lrs, list) or not config.eval_lrs or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in config.eval_lrs)):
        bad("eval_lrs", "must be null (the evaluation's grid) or a non-empty list of positive learning rates")
    if not config.eval_seeds or not all(isinstance(v, int) for v in config.eval_seeds):
        bad("eval_seeds", "must be a non-empty list of whole numbers")
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


def load_config(path: str | Path | None = None, **overrides) -> SearchConfig:
    """Defaults from ``searches/default.yaml``, then ``path`` (YAML), then non-None ``overrides``."""
    from ..grammar import data_path

    merged: dict[str, Any] = {}
    for source in [data_path("searches", "default.yaml"), path]:
        if source is None:
            continue
        merged.update(_read(Path(source)))
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


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; pass a YAML file of search settings")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{line}: invalid YAML ({getattr(err, 'problem', err)}); check indentation") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must be a YAML mapping of setting: value")
    return data
