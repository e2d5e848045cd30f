"""Turning what a user types into an FTS5 query that cannot be a syntax error."""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)


def _fold(text: str) -> str:
    # FTS5's unicode61 tokenizer with remove_diacritics folds accents; do the same here
    # so live-insert matching agrees with the index.
    text = unicodedata.normalize("NFKD", text.casefold())
    return "".join(ch for ch in text if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return _WORD.findall(_fold(text))


def fts_query(text: str) -> str:
    """Every typed word must prefix-match some word ("drag" finds "dragon").

    Words are quoted, so FTS operators (AND, NEAR, quotes, ``*``) typed by a user are
    taken literally instead of failing as syntax.
    """
    return " ".join(f'"{w}"*' for w in words(text))
