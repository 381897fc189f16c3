"""Grammars: which operands an update rule may read and which operators it may apply.

A grammar is a YAML file (see ``grammars/default.yaml`` and ``docs/grammar.md``). It is parsed
with PyYAML's safe loader only, validated key by key, and every mistake is reported as one line
``FILE:LINE: KEY: what is wrong; how to fix it``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..errors import GrammarError
from ..resources import data_path, is_file
from .model import BUILTIN_KINDS, Grammar, Operand
from .schema import OPERAND_KEYS, TOP_KEYS, _Builder
from .yaml_lines import MAX_FLOW_DEPTH, _key_on_line

MAX_GRAMMAR_BYTES = 100_000

__all__ = ["BUILTIN_KINDS", "Grammar", "MAX_FLOW_DEPTH", "MAX_GRAMMAR_BYTES", "OPERAND_KEYS", "Operand", "TOP_KEYS",
           "data_path", "default_grammar_path", "grammar_from_text", "grammar_path", "load_grammar"]


def default_grammar_path() -> Path:
    """Path of the default grammar (``grammars/default.yaml``)."""
    return data_path("grammars", "default.yaml")


def grammar_path(path: str | Path) -> Path:
    """The grammar file ``path`` names: the file itself, else with ``.yaml``/``.yml`` added, else
    (for a bare name such as ``default``) the shipped grammar of that name.

    Raises :class:`GrammarError` (one line) for a directory or a missing file.
    """
    path = Path(path)
    candidates = [path]
    if path.suffix not in (".yaml", ".yml") and path.name:
        candidates += [path.with_name(path.name + ".yaml"), path.with_name(path.name + ".yml")]
        if len(path.parts) == 1:
            try:
                candidates.append(data_path("grammars", path.name + ".yaml"))
            except (ModuleNotFoundError, FileNotFoundError):
                pass
    for candidate in candidates:
        if is_file(candidate):
            return candidate
    if is_file(path, directory=True):
        raise GrammarError(f"{path}: is a directory; pass the path of a .yaml grammar file inside it")
    also = f" (also tried {path}.yaml)" if len(candidates) > 1 else ""
    raise GrammarError(f"{path}: no such grammar file{also}; pass the path of a .yaml grammar file")


def _read_grammar_file(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_GRAMMAR_BYTES:
            raise GrammarError(f"{path}:1: (document): grammar file is larger than {MAX_GRAMMAR_BYTES // 1000} kB; a grammar is a few lines")
        raw = path.read_bytes()
    except OSError as err:
        raise GrammarError(f"{path}: cannot read the file ({err.strerror}); check its path and permissions") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        key = _key_on_line(raw.decode("utf-8", errors="replace"), line)
        raise GrammarError(f"{path}:{line}: {key}: byte 0x{raw[err.start]:02x} is not UTF-8 text; "
                           "save the grammar as UTF-8") from None


def _looks_like_yaml_text(text: str) -> bool:
    return "\n" in text or bool(re.search(r":(\s|$)|^\s*\{", text))


def grammar_from_text(text: str, origin: str | Path) -> Grammar:
    """Load grammar YAML ``text`` as if read from the file ``origin`` (its name and messages use it)."""
    return _parsed(text, str(origin))


def load_grammar(path_or_text: str | Path | Grammar | None = None) -> Grammar:
    """Load a grammar from a YAML file path, YAML text, or ``None`` for the default grammar.

    A string is a path unless it is YAML text (several lines, or a one-line mapping); a path may
    leave out ``.yaml`` and a bare name such as ``default`` finds a shipped grammar.
    """
    if isinstance(path_or_text, Grammar):
        return path_or_text
    if path_or_text is None:
        path_or_text = default_grammar_path()
    if isinstance(path_or_text, str) and _looks_like_yaml_text(path_or_text) and not is_file(Path(path_or_text)):
        if len(path_or_text.encode("utf-8", errors="replace")) > MAX_GRAMMAR_BYTES:
            raise GrammarError(f"<text>:1: (document): grammar text is larger than {MAX_GRAMMAR_BYTES // 1000} kB; "
                               "a grammar is a few lines")
        return _parsed(path_or_text, "<text>")
    if not isinstance(path_or_text, (str, Path)):
        raise GrammarError(f"a grammar must be a path, YAML text or a Grammar, not {type(path_or_text).__name__}")
    path = grammar_path(path_or_text)
    return _parsed(_read_grammar_file(path), str(path))


@lru_cache(maxsize=64)
def _parsed(text: str, origin: str) -> Grammar:
    """The grammar of YAML ``text`` from ``origin``; the same text is parsed and checked once (a
    :class:`Grammar` is never changed after it is built)."""
    return _Builder(text, origin).load()
