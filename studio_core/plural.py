"""Counts in words: "1 frame", "2 frames", "1,024 images"."""

from __future__ import annotations


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` with the noun in the form that fits it (English: only 1 is singular)."""
    noun = singular if n == 1 else (plural or singular + "s")
    return f"{n:,} {noun}"
