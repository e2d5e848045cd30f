"""Batch prompt lists: pasted lines, a .txt or a .csv → a list of jobs with stable ids.

A CSV has a header naming its columns: ``prompt`` (required), ``negative``, ``seed``,
``width``, ``height``, ``count`` in any order and case; other columns are ignored. A row
that cannot be used is reported with its row number and left out; the other rows stay.
Each row's prompt is a template (see :mod:`.wildcards`), then multiplied by the batch's
seeds and sizes unless the row sets its own.

Ids come from what a job is (prompt, negative, seed, size) plus how many identical jobs
came before it, never from its position, so reading the same list again after a crash or
a restart yields the same ids and a resumed batch skips exactly the jobs already saved.
A job without a given seed gets one derived from that id, so a re-run makes the same image.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from studio_core.pool.errors import PromptListError
from studio_core.pool.wildcards import MAX_EXPANSIONS, WordLists, expand_all

COLUMNS = ("prompt", "negative", "seed", "width", "height", "count")
MIN_SIDE, MAX_SIDE = 64, 8192
MAX_COUNT = 1000
MAX_JOBS = 10_000


@dataclass(frozen=True, slots=True)
class PromptRow:
    row: int  # 1-based line (CSV: the header is row 1)
    prompt: str
    negative: str = ""
    seed: int | None = None
    width: int | None = None
    height: int | None = None
    count: int = 1


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    message: str

    def __str__(self) -> str:
        return f"Row {self.row}: {self.message}"


@dataclass(frozen=True, slots=True)
class BatchJob:
    id: str
    prompt: str
    negative: str
    seed: int
    width: int
    height: int
    row: int


@dataclass(slots=True)
class PromptList:
    rows: list[PromptRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


@dataclass(slots=True)
class Batch:
    jobs: list[BatchJob] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)


# ---- reading ---------------------------------------------------------------------------


def parse_lines(text: str) -> PromptList:
    """One prompt per line; blank lines and ``#`` comments are skipped."""
    out = PromptList()
    for n, line in enumerate(text.splitlines(), start=1):
        s = line.strip()
        if s and not s.startswith("#"):
            out.rows.append(PromptRow(n, s))
    return out


def _int(value: str, what: str, low: int, high: int) -> int | None:
    v = value.strip()
    if not v:
        return None
    try:
        f = float(v)
    except ValueError:
        raise ValueError(f"{what} '{v[:20]}' is not a number") from None
    if f != int(f):
        raise ValueError(f"{what} {v} is not a whole number")
    if not low <= int(f) <= high:
        raise ValueError(f"{what} {int(f)} is outside {low}–{high}")
    return int(f)


def parse_csv(text: str) -> PromptList:
    out = PromptList()
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise PromptListError("empty CSV", user_message="The CSV file is empty.") from None
    except csv.Error as exc:
        raise PromptListError(f"CSV header: {exc}", user_message=f"The CSV's first row cannot be read: {exc}.") from None
    names = [h.strip().lower() for h in header]
    if "prompt" not in names:
        raise PromptListError(f"no prompt column in {names}", user_message=(
            "The CSV has no 'prompt' column. The first row must name the columns, e.g. "
            f"prompt,negative,seed,width,height,count (found: {', '.join(h for h in names if h) or 'nothing'})."))
    where = {c: names.index(c) for c in COLUMNS if c in names}
    row_no = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # The reader cannot resynchronise after a broken quote, so the rest of the file is lost:
            # say so, keep what was read.
            out.problems.append(RowProblem(reader.line_num, f"cannot be read ({exc}); the rows after it were not read"))
            break
        row_no = reader.line_num
        if not any(c.strip() for c in cells):
            continue
        if len(cells) > len(header) and any(c.strip() for c in cells[len(header):]):
            out.problems.append(RowProblem(row_no, f"has {len(cells)} fields but the header names {len(header)} "
                                                   "(a comma inside a prompt needs quotes)"))
            continue

        def cell(col: str) -> str:
            i = where.get(col)
            return cells[i] if i is not None and i < len(cells) else ""

        prompt = cell("prompt").strip()
        if not prompt:
            out.problems.append(RowProblem(row_no, "has no prompt"))
            continue
        try:
            seed = _int(cell("seed"), "seed", 0, 2**64 - 1)
            width = _int(cell("width"), "width", MIN_SIDE, MAX_SIDE)
            height = _int(cell("height"), "height", MIN_SIDE, MAX_SIDE)
            count = _int(cell("count"), "count", 1, MAX_COUNT)
        except ValueError as exc:
            out.problems.append(RowProblem(row_no, str(exc)))
            continue
        if (width is None) != (height is None):
            out.problems.append(RowProblem(row_no, "gives only one of width and height"))
            continue
        out.rows.append(PromptRow(row_no, prompt, cell("negative").strip(), seed, width, height, count or 1))
    return out


def decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel on Windows saves CSV in the ANSI code page


def read_file(path: Path) -> PromptList:
    """A .txt or .csv prompt list (read on a worker thread: this touches the disk)."""
    p = Path(path)
    if p.suffix.lower() not in (".txt", ".csv"):
        raise PromptListError(f"unsupported list {p.suffix}", user_message=f"{p.name}: use a .txt (one prompt per line) or a .csv file.")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise PromptListError(f"{p}: {exc}", user_message=f"{p.name} could not be read: {exc.strerror or exc}.") from exc
    text = decode(data)
    return parse_csv(text) if p.suffix.lower() == ".csv" else parse_lines(text)


# ---- expanding -------------------------------------------------------------------------


def derived_seed(job_key: str) -> int:
    return int.from_bytes(hashlib.sha256(b"seed:" + job_key.encode()).digest()[:4], "big")


def expand(plist: PromptList, *, lists: WordLists | None = None, seeds: Sequence[int | None] = (None,),
           sizes: Sequence[tuple[int, int]] = ((1024, 1024),), negative: str = "", salt: str = "") -> Batch:
    """Rows × wildcard combinations × seeds × sizes → jobs. ``salt`` separates batches that share prompts."""
    lists = lists or WordLists()
    out = Batch(problems=list(plist.problems))
    seen: dict[str, int] = {}
    for row in plist.rows:
        try:
            prompts = expand_all(row.prompt, lists, limit=MAX_EXPANSIONS)
            negatives = expand_all(row.negative or negative, lists, limit=MAX_EXPANSIONS) if (row.negative or negative) else [""]
        except PromptListError as exc:
            out.problems.append(RowProblem(row.row, exc.user_message))
            continue
        row_sizes: Iterable[tuple[int, int]] = [(row.width, row.height)] if row.width and row.height else sizes
        row_seeds: Sequence[int | None] = [row.seed] if row.seed is not None else seeds
        made: list[BatchJob] = []
        for prompt in prompts:
            for neg in negatives:
                for w, h in row_sizes:
                    for base_seed in row_seeds:
                        for k in range(row.count):
                            seed_given = base_seed + k if base_seed is not None else None
                            key = json.dumps([salt, prompt, neg, seed_given, w, h], ensure_ascii=False)
                            n = seen.get(key, 0)
                            seen[key] = n + 1
                            digest = hashlib.sha256(f"{key}#{n}".encode()).hexdigest()
                            seed = seed_given if seed_given is not None else derived_seed(digest)
                            made.append(BatchJob("b" + digest[:20], prompt, neg, seed % 2**64, w, h, row.row))
        if len(out.jobs) + len(made) > MAX_JOBS:
            raise PromptListError(f"batch over {MAX_JOBS} jobs", user_message=(
                f"This list makes more than {MAX_JOBS:,} images (row {row.row} alone adds {len(made):,}). "
                "Split it or use fewer choices, seeds or sizes."))
        out.jobs.extend(made)
    return out
