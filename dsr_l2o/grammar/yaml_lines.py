"""Reading YAML with line numbers: every mistake is one line ``FILE:LINE: KEY: what; how to fix it``.

:class:`YamlDocument` composes the document with PyYAML's safe loader (no tags, no aliases, no
duplicate keys, bounded flow nesting and number length) and remembers the line of every key, so
grammars and search settings report errors alike.
"""

from __future__ import annotations

import re

import yaml

from ..errors import DsrError, GrammarError
from ..limits import shorten

MAX_FLOW_DEPTH = 32
MAX_NUMBER_CHARS = 100

class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, used in two steps: compose (checked by :class:`_Located`), then construct."""


_YAML_TRUE = ("yes", "true", "on")
_KEY_ON_LINE = re.compile(r"^\s*(?:-\s+)?['\"]?([^\s:'\"#{}\[\],]+)['\"]?\s*:")


def _flow_too_deep(text: str) -> int | None:
    """The line where ``[``/``{`` nesting first exceeds MAX_FLOW_DEPTH, else None.

    PyYAML scans deep flow nesting in quadratic time, so this linear pre-check (which skips
    quoted strings and comments) keeps hostile files cheap to reject.
    """
    depth, line, quote, i = 0, 1, None, 0
    while i < len(text):
        c = text[i]
        if c == "\n":
            line += 1
        if quote:
            if c == "\\" and quote == '"':
                i += 1
            elif c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c == "#" and (i == 0 or text[i - 1] in " \t\n"):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_FLOW_DEPTH:
                return line
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def _key_on_line(text: str, line: int | None) -> str:
    """The mapping key written on ``line`` of ``text`` (or the nearest one above it)."""
    lines = text.splitlines()
    if not line:
        return "(document)"
    for number in range(min(line, len(lines)), 0, -1):
        match = _KEY_ON_LINE.match(lines[number - 1])
        if match:
            return match.group(1)
    return "(document)"


class _Located:
    """Line numbers of the keys of a composed YAML document, its duplicate keys and its aliases."""

    def __init__(self, root: yaml.Node | None = None):
        self.lines: dict[tuple, int] = {}
        self.duplicate: tuple[tuple, int, int] | None = None
        self.alias: tuple[tuple, int] | None = None
        self.starts: dict[tuple[int, int], tuple] = {}
        if root is not None:
            self._walk(root)

    def _walk(self, root):
        visited, stack = set(), [(root, ())]
        while stack:
            node, path = stack.pop()
            if id(node) in visited:
                self.alias = self.alias or (path, self.lines.get(path, node.start_mark.line + 1))
                continue
            visited.add(id(node))
            self.lines.setdefault(path, node.start_mark.line + 1)
            self.starts.setdefault((node.start_mark.line, node.start_mark.column), path)
            if isinstance(node, yaml.MappingNode):
                first: dict[tuple, int] = {}
                for key, value in node.value:
                    name = key.value if isinstance(key, yaml.ScalarNode) else "(complex key)"
                    if key.tag == "tag:yaml.org,2002:bool":
                        self.lines.setdefault(path + (str(name.lower() in _YAML_TRUE),), key.start_mark.line + 1)
                    sub, line = path + (name,), key.start_mark.line + 1
                    ident = (key.tag, name)
                    if isinstance(key, yaml.ScalarNode) and name != "<<" and ident in first:
                        self.duplicate = self.duplicate or (sub, line, first[ident])
                    first.setdefault(ident, line)
                    self.lines.setdefault(sub, line)
                    stack.append((value, sub))
            elif isinstance(node, yaml.SequenceNode):
                for i, item in enumerate(node.value):
                    stack.append((item, path + (i,)))

    def line(self, path) -> int | None:
        """Line of ``path`` (keys and list indexes), or of its nearest enclosing key."""
        path = tuple(str(p) if not isinstance(p, int) or isinstance(p, bool) else p for p in path)
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def key_at(self, line: int, column: int | None = None) -> tuple | None:
        """The key path of the node starting at ``line`` and ``column``, else the deepest on ``line``."""
        if (line - 1, column) in self.starts:
            return self.starts[(line - 1, column)]
        paths = [p for p, n in self.lines.items() if n == line]
        return max(paths, key=len) if paths else None


class YamlDocument:
    """One YAML text from ``origin``; errors are ``error`` instances naming file, line and key."""

    def __init__(self, text: str, origin: str, error: type[DsrError] = GrammarError, what: str = "a grammar"):
        self.text, self.origin, self.error, self.what = text, origin, error, what
        self.where = _Located()

    def fail(self, path, message: str):
        line = self.where.line(path) or 1
        key = shorten(".".join(str(p) for p in path), 80) or "(top level)"
        raise self.error(f"{self.origin}:{line}: {key}: {message}") from None

    def fail_at(self, mark, message: str):
        line = mark.line + 1 if mark else None
        path = self.where.key_at(line, mark.column) if mark else None
        key = ".".join(str(p) for p in path) if path else _key_on_line(self.text, line)
        raise self.error(f"{self.origin}:{line or 1}: {shorten(key, 80) or '(top level)'}: {message}") from None

    def read(self):
        """The document's data (after every structural check), or one error."""
        loader = None
        deep = _flow_too_deep(self.text)
        if deep:
            self.fail_at(yaml.Mark("", 0, deep - 1, 0, None, None),
                         f"YAML nests [ ] or {{ }} more than {MAX_FLOW_DEPTH} levels deep; {self.what} needs only a few")
        try:
            loader = _Loader(self.text)
            root = loader.get_single_node()
            self.where = _Located(root)
            self.check_structure()
            self.check_numbers(root)
            return None if root is None else loader.construct_document(root)
        except RecursionError:
            self.fail((), f"YAML nests too deeply; {self.what} needs only a few levels")
        except yaml.constructor.ConstructorError as err:
            if "could not determine a constructor" in str(err.problem):
                self.fail_at(err.problem_mark, f"YAML tag not allowed ({err.problem}); settings files use plain YAML "
                              "only: strings, numbers, lists and mappings")
            self.fail_at(err.problem_mark, f"invalid YAML value ({err.problem}); use plain strings, numbers, "
                          "lists and mappings")
        except (ValueError, OverflowError) as err:
            self.fail((), f"a YAML value cannot be read ({shorten(err, 80)}); write plain numbers and strings")
        except yaml.reader.ReaderError as err:
            line = self.text[: err.position].count("\n")
            self.fail_at(yaml.Mark("", err.position, line, -1, None, None), f"character {chr(err.character)!r} is not allowed in YAML; "
                          "remove it or save the file as plain UTF-8 text")
        except yaml.YAMLError as err:
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            self.fail_at(getattr(err, "problem_mark", None), f"invalid YAML: {problem}; check indentation and quoting")
        finally:
            if loader is not None:
                loader.dispose()

    def check_numbers(self, root):
        stack = [root] if root is not None else []
        while stack:
            node = stack.pop()
            if isinstance(node, yaml.MappingNode):
                stack.extend(part for pair in node.value for part in pair)
            elif isinstance(node, yaml.SequenceNode):
                stack.extend(node.value)
            elif node.tag in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float") and len(node.value) > MAX_NUMBER_CHARS:
                self.fail_at(node.start_mark, f"number {shorten(node.value)} is longer than {MAX_NUMBER_CHARS} "
                             "characters; write it with an exponent, e.g. 1e-8")

    def check_structure(self):
        if self.where.duplicate:
            path, line, first = self.where.duplicate
            raise self.error(f"{self.origin}:{line}: {'.'.join(map(str, path))}: duplicate key "
                               f"(first given on line {first}); remove or rename one of them")
        if self.where.alias:
            path, line = self.where.alias
            raise self.error(f"{self.origin}:{line}: {'.'.join(map(str, path)) or '(top level)'}: "
                               "YAML aliases (*name) are not supported; write the value out")
