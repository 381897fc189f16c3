"""Atomic file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is flushed to disk (fsync) and
    replaces ``path`` in one step. A killed process can leave the temporary ``.NAME.XXXXXXXX.tmp``
    behind; :func:`clean_temp_files` removes those."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file normal permissions
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent, directory=True)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_TEMP_NAME = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp")


def clean_temp_files(directory: str | Path) -> list[Path]:
    """Remove the temporary files :func:`atomic_path` left in ``directory`` (and its ``plots/``)
    when a process was killed mid-write; returns what it removed."""
    removed = []
    for folder in (Path(directory), Path(directory) / "plots"):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in folder.iterdir():
            if _TEMP_NAME.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink():
                entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed


def _fsync(path, directory: bool = False) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON (no NaN/inf) to ``path`` atomically."""
    return write_text(path, json.dumps(data, indent=1, allow_nan=False) + "\n")


def write_torch(path: str | Path, data: Any) -> Path:
    """``torch.save`` plain tensors/dicts to ``path`` atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return Path(path)


def copy_file(source: str | Path, target: str | Path) -> Path:
    """Copy the regular file ``source`` to ``target`` atomically (a symlinked source is refused)."""
    source = Path(source)
    if source.is_symlink() or not source.is_file():
        raise OSError(f"{source}: not a regular file")
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return Path(target)
