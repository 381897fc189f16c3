"""Resuming a search: the checkpoint's schema, the run directory as the source of truth, a torn metrics tail.

``checkpoint.pt`` is untrusted input like any file a user can hand over: it is read with
``torch.load(weights_only=True)`` and then checked key by key, shape by shape and value by value
against the relaxation and meta-optimizer the current grammar and settings build. Anything else
is a one-line :class:`~dsr_l2o.errors.ResultError`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch

from ..atomic import write_text
from ..errors import ConfigError, ResultError, shorten
from .config import SearchConfig, _read, load_config

MAX_CHECKPOINT_BYTES = 100_000_000
CHANGEABLE = {"device", "dist_timeout", "recompute_segment", "workers"}
"""Settings a resume may change freely (they do not change the result); ``meta_steps`` may only grow."""
_META_KEYS = ("meta_step", "episode", "skipped", "seconds")


class _Bad(Exception):
    pass


def resumed_settings(out: Path, config_path, overrides: Mapping[str, Any]) -> SearchConfig:
    """The settings of the search in ``out`` (its ``config.yaml``), with the changes a resume allows.

    ``overrides`` are the flags given now and ``config_path`` a config file given now; a value that
    differs from the saved one is a :class:`ConfigError`, except ``device`` and a larger ``meta_steps``.
    """
    if not (out / "checkpoint.pt").exists():
        raise ConfigError(f"{out}: no checkpoint.pt to resume from; run without --resume first")
    saved_path = out / "config.yaml"
    if not saved_path.is_file():
        raise ConfigError(f"{saved_path}: missing; {out} was not written by 'dsr-l2o search', so it cannot be resumed")
    saved = load_config(saved_path)
    requested = dict(_read(Path(config_path))) if config_path is not None else {}
    requested.update({k: v for k, v in overrides.items() if v is not None and k != "grammar"})
    changes = {}
    for key, value in requested.items():
        if key == "grammar" or key not in {f.name for f in dataclasses.fields(SearchConfig)}:
            continue  # the grammar is compared by content (resumed_grammar_text); load_config reports unknown keys
        old = getattr(saved, key)
        if key in CHANGEABLE:
            changes[key] = value
        elif key == "meta_steps" and isinstance(value, int) and value >= old:
            changes[key] = value
        elif not _same(value, old):
            flag = "--" + key.replace("_", "-")
            hint = " (it may only grow)" if key == "meta_steps" else ""
            raise ConfigError(f"{saved_path}: {key} is {shorten(repr(old))} but {flag} {shorten(repr(value))} was given{hint}; "
                              "a resume continues the saved settings: drop the flag, or start a new search with another --out")
    return load_config(saved_path, **changes) if changes else saved


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def resumed_grammar_text(out: Path, grammar_arg) -> str:
    """The text of ``out/grammar.yaml``; a grammar given now must have the same content."""
    from ..grammar import load_grammar

    copy = out / "grammar.yaml"
    if not copy.is_file():
        raise ConfigError(f"{copy}: missing; {out} cannot be resumed without the grammar it searched")
    text = copy.read_text(encoding="utf-8")
    requested = load_grammar(grammar_arg) if grammar_arg is not None else None
    if requested is not None and requested.source_text != text:
        raise ConfigError(f"{requested.path or 'the grammar given'}: differs from {copy}, the grammar this search ran on; a resume continues "
                          "that grammar: drop the grammar argument, or start a new search with another --out")
    return text


def load_checkpoint(path: Path, trainer, device) -> None:
    """Read ``path`` into ``trainer`` after checking it against ``trainer``'s own state (one-line errors)."""
    try:
        if path.is_dir():
            raise _Bad("is a directory")
        if path.stat().st_size > MAX_CHECKPOINT_BYTES:
            raise _Bad(f"is larger than {MAX_CHECKPOINT_BYTES // 1_000_000} MB")
        try:
            data = torch.load(path, weights_only=True, map_location=device)
        except Exception as err:  # torch's own messages suggest unsafe loading; never show them
            raise _Bad(f"cannot be read as a torch checkpoint ({type(err).__name__}: truncated, empty or another format)")
        check_checkpoint(data, trainer)
        trainer.load_state_dict(data)
    except _Bad as err:
        raise ResultError(f"{path}: {err}; it is not a checkpoint of this search; restore it, or delete it "
                          "and the run directory and start again") from None


def check_checkpoint(data, trainer) -> None:
    """Raise ``_Bad`` unless ``data`` has exactly the keys, shapes and ranges of ``trainer.state_dict()``."""
    _keys(data, set(trainer.state_dict()), "the checkpoint")
    if "estimator" in data:
        _estimator(data["estimator"])
    expected = trainer.rule.state_dict()
    _keys(data["rule"], set(expected), "rule")
    for key, ref in expected.items():
        _tensor(data["rule"][key], ref.shape, f"rule.{key}")
    params = [p for group in trainer.optimizer.param_groups for p in group["params"]]
    optimizer = data["optimizer"]
    _keys(optimizer, {"state", "param_groups"}, "optimizer")
    groups = optimizer["param_groups"]
    if not isinstance(groups, list) or len(groups) != len(trainer.optimizer.param_groups):
        raise _Bad("optimizer.param_groups does not match the meta-optimizer")
    ids = []
    for i, group in enumerate(groups):
        if not isinstance(group, dict) or not isinstance(group.get("params"), list):
            raise _Bad(f"optimizer.param_groups[{i}] is not a parameter group")
        ids += group["params"]
        lr = group.get("lr")
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise _Bad(f"optimizer.param_groups[{i}].lr is not a positive number")
    if ids != list(range(len(params))):
        raise _Bad("optimizer.param_groups lists other parameters than the relaxation has")
    state = optimizer["state"]
    if not isinstance(state, dict) or not set(state) <= set(ids):
        raise _Bad("optimizer.state names parameters the relaxation does not have")
    for index, entry in state.items():
        _keys(entry, {"step", "exp_avg", "exp_avg_sq"}, f"optimizer.state[{index}]")
        _tensor(entry["step"], torch.Size(()), f"optimizer.state[{index}].step", low=0.0)
        _tensor(entry["exp_avg"], params[index].shape, f"optimizer.state[{index}].exp_avg")
        _tensor(entry["exp_avg_sq"], params[index].shape, f"optimizer.state[{index}].exp_avg_sq", low=0.0)
    _meta(data["meta"], trainer.config, trainer.truncations)


def _estimator(value) -> None:
    """The population gradient's hall of fame: texts with one total and one count each."""
    _keys(value, {"texts", "totals", "counts"}, "estimator")
    texts, totals, counts = value["texts"], value["totals"], value["counts"]
    if not isinstance(texts, list) or not all(isinstance(t, str) and len(t) <= 10_000 for t in texts):
        raise _Bad("estimator.texts is not a list of formula texts")
    for name, tensor in (("totals", totals), ("counts", counts)):
        if not isinstance(tensor, torch.Tensor) or tensor.shape != torch.Size([len(texts)]):
            raise _Bad(f"estimator.{name} is not a tensor with one entry per formula")
    if not bool(torch.isfinite(totals.double()).all()) or bool((counts < 1).any()):
        raise _Bad("estimator.totals or counts hold invalid values")


def _keys(value, expected: set, what: str) -> None:
    if not isinstance(value, dict):
        raise _Bad(f"{what} is a {type(value).__name__}, not a mapping")
    missing, extra = expected - set(value), set(value) - expected
    if missing:
        raise _Bad(f"{what} lacks {', '.join(sorted(map(str, missing)))}")
    if extra:
        raise _Bad(f"{what} has unexpected key(s) {shorten(', '.join(sorted(map(str, extra))))}")


def _tensor(value, shape, what: str, low: float | None = None) -> None:
    if not isinstance(value, torch.Tensor) or not value.is_floating_point():
        raise _Bad(f"{what} is not a floating-point tensor")
    if value.shape != shape:
        raise _Bad(f"{what} has shape {list(value.shape)}, but the current grammar and settings need "
                   f"{list(shape)} (was the grammar or --depth changed?)")
    if not bool(torch.isfinite(value).all()):
        raise _Bad(f"{what} holds NaN or infinite values")
    if low is not None and bool((value < low).any()):
        raise _Bad(f"{what} holds values below {low:g}")


def _meta(meta, config: SearchConfig, truncations: int) -> None:
    _keys(meta, set(_META_KEYS), "meta")
    for key in ("meta_step", "episode", "skipped"):
        value = meta[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _Bad(f"meta.{key} is {shorten(repr(value))}, not a whole number >= 0")
    seconds = meta["seconds"]
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) or seconds < 0:
        raise _Bad("meta.seconds is not a finite number >= 0")
    step, episode = meta["meta_step"], meta["episode"]
    if step > config.meta_steps:
        raise _Bad(f"meta.meta_step {step} is past the search's {config.meta_steps} meta-steps")
    if meta["skipped"] > step:
        raise _Bad("meta.skipped is larger than meta.meta_step")
    if step > episode * truncations or episode > step // truncations + 1:
        raise _Bad(f"meta.episode {episode} does not match meta.meta_step {step}")


def truncate_metrics(path: Path, meta_step: int) -> None:
    """Keep the records of ``metrics.jsonl`` before ``meta_step``; a torn last line (a kill in the
    middle of a write) is dropped with a warning, any other unreadable line is a ResultError."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    keep = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            step = record["step"]
            if isinstance(step, bool) or not isinstance(step, int):
                raise ValueError
        except (ValueError, KeyError, TypeError, RecursionError):
            if all(not rest.strip() for rest in lines[number:]):
                warnings.warn(f"{path}:{number}: dropped a torn last line (the search was killed while writing it)",
                              RuntimeWarning, stacklevel=2)
                continue
            raise ResultError(f"{path}:{number}: not a metrics record; restore the file or start a new search") from None
        if step < meta_step:
            keep.append(line)
    write_text(path, "".join(line + "\n" for line in keep))


def interrupted_message(out: Path) -> str:
    """What to tell a user whose search in ``out`` was interrupted (Ctrl-C)."""
    metrics = out / "metrics.jsonl"
    steps = 0
    if metrics.is_file():
        steps = sum(1 for line in metrics.read_text(encoding="utf-8", errors="replace").splitlines()
                    if line.endswith("}"))
    where = f"interrupted at meta-step {steps}"
    if not (out / "checkpoint.pt").exists():
        return f"{where}, before the first checkpoint; start it again (without --resume) with --out {out}"
    return f"{where}; continue with --resume --out {out}"
