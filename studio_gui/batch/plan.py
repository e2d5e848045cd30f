"""What the Batch dialog's fields make, read off the GUI thread (word lists and files touch the disk). Qt-free."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from studio_core.pool import prompt_list
from studio_core.pool.errors import PromptListError
from studio_core.pool.wildcards import WordLists

_SIZE = re.compile(r"^\s*(\d{2,5})\s*[x×*]\s*(\d{2,5})\s*$", re.IGNORECASE)


@dataclass
class BatchPreview:
    jobs: list = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    error: str = ""  # the whole list is unusable


def parse_sizes(text: str, default: tuple[int, int]) -> tuple[list[tuple[int, int]], str]:
    """``"1024x1024, 768×1344"`` → sizes, or "" and a sentence saying which entry is wrong."""
    out: list[tuple[int, int]] = []
    for part in [p for p in re.split(r"[,;]", text) if p.strip()]:
        m = _SIZE.match(part)
        if not m:
            return [], f"'{part.strip()}' is not a size: write it as 1024x1024."
        w, h = int(m.group(1)), int(m.group(2))
        if not (prompt_list.MIN_SIDE <= w <= prompt_list.MAX_SIDE and prompt_list.MIN_SIDE <= h <= prompt_list.MAX_SIDE):
            return [], f"{w}x{h} is outside {prompt_list.MIN_SIDE}–{prompt_list.MAX_SIDE} pixels."
        out.append((w, h))
    return out or [default], ""


def preview(*, text: str, csv_mode: bool, words_folder: str, seeds_per_prompt: int, sizes: str,
            default_size: tuple[int, int], negative: str = "") -> BatchPreview:
    """Blocking: the jobs and the problems, row by row."""
    size_list, size_error = parse_sizes(sizes, default_size)
    if size_error:
        return BatchPreview(error=size_error)
    try:
        plist = prompt_list.parse_csv(text) if csv_mode else prompt_list.parse_lines(text)
        batch = prompt_list.expand(plist, lists=WordLists(Path(words_folder) if words_folder else None),
                                   seeds=(None,) * max(1, seeds_per_prompt), sizes=size_list, negative=negative)
    except PromptListError as exc:
        return BatchPreview(error=exc.user_message)
    return BatchPreview(batch.jobs, [str(p) for p in batch.problems])


def read_list_file(path: Path) -> tuple[str, bool]:
    """The file's text and whether it is a CSV (raises PromptListError with a sentence)."""
    p = Path(path)
    if p.suffix.lower() not in (".txt", ".csv"):
        raise PromptListError(f"unsupported {p.suffix}", user_message=f"{p.name}: use a .txt (one prompt per line) or a .csv file.")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PromptListError(f"{p}: {exc}", user_message=f"{p.name} could not be read: {exc.strerror or exc}.") from exc
    return prompt_list.decode(data), p.suffix.lower() == ".csv"
