"""Prompt templates: ``{red|blue|green}`` choices and ``__name__`` word lists, expanded to every combination.

``__name__`` reads ``<folder>/name.txt`` (one entry per line, ``#`` comments and blank lines
skipped); ``__colors/warm__`` reads ``colors/warm.txt``. Choices may nest and word-list
entries may hold templates themselves, up to a fixed depth so a list that names itself
ends with a message instead of a hang.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator, Mapping

from studio_core.pool.errors import PromptListError

MAX_DEPTH = 6
MAX_EXPANSIONS = 10_000
_WORDLIST = re.compile(r"__([A-Za-z0-9_\-]+(?:/[A-Za-z0-9_\-]+)*)__")


class MissingWordList(PromptListError):
    def __init__(self, name: str, where: str):
        super().__init__(f"word list {name!r} not found at {where}",
                         user_message=f"The word list '__{name}__' has no file: {where} does not exist.")
        self.name = name


class WordLists:
    """Word lists from a folder (read once each), or given directly (tests, pasted lists)."""

    def __init__(self, folder: Path | None = None, lists: Mapping[str, tuple[str, ...]] | None = None):
        self.folder = Path(folder) if folder else None
        self._cache: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in (lists or {}).items()}

    def get(self, name: str) -> tuple[str, ...]:
        if name in self._cache:
            return self._cache[name]
        if self.folder is None:
            raise MissingWordList(name, f"{name}.txt (no word-list folder is set)")
        path = self.folder.joinpath(*name.split("/")).with_suffix(".txt")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise MissingWordList(name, str(path)) from None
        except OSError as exc:
            raise PromptListError(f"{path}: {exc}", user_message=f"The word list {path} could not be read: {exc.strerror or exc}.") from exc
        text = raw.decode("utf-8-sig", errors="replace")
        words = tuple(ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#"))
        if not words:
            raise PromptListError(f"{path} is empty", user_message=f"The word list {path} has no entries.")
        self._cache[name] = words
        return words


def _split_choices(body: str) -> list[str]:
    """``a|{b|c}|d`` → ``["a", "{b|c}", "d"]``: split on top-level bars only."""
    parts, depth, cur = [], 0, []
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "|" and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def _first_group(text: str) -> tuple[int, int] | None:
    start = text.find("{")
    if start < 0:
        return None
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return start, i
    raise PromptListError(f"unclosed brace in {text[:80]!r}",
                          user_message=f"A '{{' has no matching '}}' in: {text[:80]}")


def expand(template: str, lists: WordLists, *, _depth: int = 0) -> Iterator[str]:
    """Every text the template can produce, in a stable order (left to right, as written)."""
    if _depth > MAX_DEPTH:
        raise PromptListError(f"wildcards nest deeper than {MAX_DEPTH}",
                              user_message="The wildcards nest too deeply (does a word list name itself?).")
    m = _WORDLIST.search(template)
    group = _first_group(template)
    if group is not None and (m is None or group[0] < m.start()):
        a, b = group
        for choice in _split_choices(template[a + 1:b]):
            for head in expand(choice, lists, _depth=_depth + 1):
                for tail in expand(template[b + 1:], lists, _depth=_depth):
                    yield template[:a] + head + tail
        return
    if m is not None:
        for word in lists.get(m.group(1)):
            for head in expand(word, lists, _depth=_depth + 1):
                for tail in expand(template[m.end():], lists, _depth=_depth):
                    yield template[:m.start()] + head + tail
        return
    if "}" in template:
        raise PromptListError(f"stray brace in {template[:80]!r}", user_message=f"A '}}' has no matching '{{' in: {template[:80]}")
    yield template


def expand_all(template: str, lists: WordLists, *, limit: int = MAX_EXPANSIONS) -> list[str]:
    out: list[str] = []
    for text in expand(template, lists):
        out.append(" ".join(text.split()))
        if len(out) > limit:
            raise PromptListError(f"more than {limit} expansions of {template[:80]!r}",
                                  user_message=f"This line expands to more than {limit:,} prompts: {template[:80]}. "
                                               "Use fewer choices.")
    return out
