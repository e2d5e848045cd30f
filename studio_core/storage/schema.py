"""The gallery index's SQLite schema, its migrations, and row <-> record conversion."""

from __future__ import annotations

import math
import sqlite3
from typing import Any, Sequence

from studio_core.errors import DiskFull, StorageError
from studio_core.storage.records import ImageRecord

# Each entry upgrades the schema from version i to i+1. Never edit a released step:
# append a new one, so every older index on a user's disk follows the same path.
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1: the images table
        """CREATE TABLE images(
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            service TEXT NOT NULL DEFAULT '', model TEXT NOT NULL DEFAULT '',
            prompt TEXT NOT NULL DEFAULT '', negative TEXT NOT NULL DEFAULT '',
            seed INTEGER, width INTEGER NOT NULL DEFAULT 0, height INTEGER NOT NULL DEFAULT 0,
            steps INTEGER NOT NULL DEFAULT 0, cfg REAL NOT NULL DEFAULT 0,
            sampler TEXT NOT NULL DEFAULT '', scheduler TEXT NOT NULL DEFAULT '',
            quality TEXT NOT NULL DEFAULT '', provider TEXT NOT NULL DEFAULT '', server TEXT NOT NULL DEFAULT '',
            duration_s REAL, cost_usd REAL,
            created TEXT NOT NULL DEFAULT '', created_ts REAL NOT NULL DEFAULT 0,
            file_size INTEGER NOT NULL DEFAULT 0, mtime_ns INTEGER NOT NULL DEFAULT 0,
            favourite INTEGER NOT NULL DEFAULT 0, tags TEXT NOT NULL DEFAULT '',
            source TEXT NOT NULL DEFAULT '', request_json TEXT NOT NULL DEFAULT ''
        )""",
        "CREATE INDEX images_created ON images(created_ts, id)",
        "CREATE INDEX images_service ON images(service)",
    ),
    (  # 1 -> 2: full-text search over prompts and tags (negative prompts would match noise)
        "CREATE VIRTUAL TABLE images_fts USING fts5(prompt, tags, content='images', content_rowid='id',"
        " tokenize='unicode61 remove_diacritics 2')",
        "CREATE TRIGGER images_fts_ai AFTER INSERT ON images BEGIN"
        " INSERT INTO images_fts(rowid, prompt, tags) VALUES (new.id, new.prompt, new.tags); END",
        "CREATE TRIGGER images_fts_ad AFTER DELETE ON images BEGIN"
        " INSERT INTO images_fts(images_fts, rowid, prompt, tags) VALUES ('delete', old.id, old.prompt, old.tags); END",
        "CREATE TRIGGER images_fts_au AFTER UPDATE OF prompt, tags ON images BEGIN"
        " INSERT INTO images_fts(images_fts, rowid, prompt, tags) VALUES ('delete', old.id, old.prompt, old.tags);"
        " INSERT INTO images_fts(rowid, prompt, tags) VALUES (new.id, new.prompt, new.tags); END",
        "INSERT INTO images_fts(images_fts) VALUES ('rebuild')",
    ),
)
MIGRATIONS += (
    (  # 2 -> 3: "By prompt" pages through an index instead of sorting every row; the
       # statistics line and the filter menus read covering indexes instead of the table.
        "CREATE INDEX images_prompt ON images(prompt COLLATE NOCASE, id)",
        "DROP INDEX images_service",
        "CREATE INDEX images_service_size ON images(service, file_size)",
        "CREATE INDEX images_model ON images(model)",
    ),
)
MIGRATIONS += (
    (  # 3 -> 4: seeds go up to 2**64-1 (ComfyUI's range) but an SQLite INTEGER stops at
       # 2**63-1, and a TEXT value that looks numeric is turned back into a lossy REAL by an
       # INTEGER column; so seeds move to a TEXT column of their own. ``origin`` tells images
       # this install generated from imported ones (the spend counter counts only the first).
        "ALTER TABLE images ADD COLUMN seed_text TEXT",
        "UPDATE images SET seed_text = CAST(seed AS TEXT) WHERE typeof(seed) = 'integer'",
        "UPDATE images SET seed = NULL",
        "ALTER TABLE images ADD COLUMN origin TEXT NOT NULL DEFAULT ''",
        "UPDATE images SET origin = CASE WHEN substr(path, 1, 9) = 'imported/' OR source != 'studio'"
        " THEN 'imported' ELSE 'generated' END",
        # Rows read from another tool's metadata were filed under ComfyUI when the file named no
        # service; an impossible mtime makes the next reconcile re-read them from their files.
        "UPDATE images SET mtime_ns = -1 WHERE source != 'studio'",
    ),
)
MIGRATIONS += (
    (  # 4 -> 5: batch runs. An image of a batch names its set (the gallery filters by it) and
       # its batch and job ids, which is how a resumed batch knows the job is already made.
        "ALTER TABLE images ADD COLUMN set_name TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE images ADD COLUMN batch_id TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE images ADD COLUMN batch_job TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX images_batch ON images(batch_id, batch_job)",
        "CREATE INDEX images_set ON images(set_name, created_ts)",
    ),
)
MIGRATIONS += (
    (  # 5 -> 6: image inputs. The digests (comma-separated, in the input store) of the init
       # image, mask, references and control images an image was made from; '' for none.
        "ALTER TABLE images ADD COLUMN input_digests TEXT NOT NULL DEFAULT ''",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)

ROW_COLUMNS = (
    "path", "service", "model", "prompt", "negative", "seed_text", "width", "height", "steps", "cfg", "sampler",
    "scheduler", "quality", "provider", "server", "duration_s", "cost_usd", "created", "created_ts",
    "file_size", "mtime_ns", "source", "request_json", "origin", "set_name", "batch_id", "batch_job",
    "input_digests",
)
# Columns a rescan may overwrite; favourite and tags are the user's and survive it.
_UPSERT = ", ".join(f"{c}=excluded.{c}" for c in ROW_COLUMNS if c != "path")
_INSERT_SQL = (f"INSERT INTO images({', '.join(ROW_COLUMNS)}) VALUES ({', '.join('?' * len(ROW_COLUMNS))})"
               f" ON CONFLICT(path) DO UPDATE SET {_UPSERT}")
_RECORD_COLUMNS = (
    "id", "path", "service", "model", "prompt", "negative", "seed_text", "width", "height", "steps", "cfg", "sampler",
    "scheduler", "quality", "provider", "server", "duration_s", "cost_usd", "created", "created_ts",
    "file_size", "mtime_ns", "favourite", "tags", "source", "origin", "set_name", "input_digests",
)
_SELECT = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM images"


_SHARED: dict[str, str] = {}


def _share(text: str) -> str:
    # Service, model, sampler, negative prompt… repeat across thousands of rows; one shared
    # string each keeps 100k loaded records tens of MB smaller. Bounded so odd data can't grow it.
    if len(_SHARED) > 4096:
        _SHARED.clear()
    return _SHARED.setdefault(text, text)


def _to_record(row: Sequence[Any]) -> ImageRecord:
    (id_, path, service, model, prompt, negative, seed_text, width, height, steps, cfg, sampler, scheduler, quality,
     provider, server, duration_s, cost_usd, created, created_ts, file_size, mtime_ns, fav, tags, source,
     origin, set_name, input_digests) = row
    sh = _share
    return ImageRecord(
        id=id_, path=path, service=sh(service), model=sh(model), prompt=prompt, negative=sh(negative),
        seed=seed_from_text(seed_text),
        width=width, height=height, steps=steps, cfg=cfg, sampler=sh(sampler), scheduler=sh(scheduler),
        quality=sh(quality), provider=sh(provider), server=sh(server), duration_s=duration_s, cost_usd=cost_usd,
        created=created, created_ts=created_ts, file_size=file_size, mtime_ns=mtime_ns, favourite=bool(fav),
        tags=tuple(t.strip() for t in tags.split(",") if t.strip()) if tags else (), source=sh(source),
        origin=sh(origin or ""), set_name=sh(set_name or ""),
        input_digests=tuple(d for d in (input_digests or "").split(",") if d),
    )


def seed_from_text(text: Any) -> int | None:
    if text is None or text == "":
        return None
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _storage_error(exc: sqlite3.Error, action: str) -> StorageError:
    text = str(exc).lower()
    if "full" in text:
        return DiskFull(f"{action}: {exc}", user_message="The disk is full, so the gallery index could not be updated."
                        " Free some space; your images are safe.")
    if "unable to open" in text:
        return StorageError(f"{action}: {exc}", user_message="The gallery index could not be opened: its folder may be"
                            " read-only or on a disk that is not available.")
    if "readonly" in text or "read-only" in text:
        return StorageError(f"{action}: {exc}", user_message="The gallery index is on a read-only disk or folder,"
                            " so changes could not be saved.")
    if "locked" in text or "busy" in text:
        return StorageError(f"{action}: {exc}", user_message="The gallery index is busy (is the studio open twice?).",
                            retryable=True)
    return StorageError(f"{action}: {exc}", user_message="The gallery index could not be read or updated.")



def _default(column: str) -> Any:
    if column in ("seed_text", "duration_s", "cost_usd"):
        return None
    if column in ("width", "height", "steps", "file_size", "mtime_ns"):
        return 0
    if column in ("cfg", "created_ts"):
        return 0.0
    return ""


_INT64 = range(-2**63, 2**63)
_INTEGER_COLUMNS = frozenset(("width", "height", "steps", "file_size", "mtime_ns"))
_REAL_COLUMNS = frozenset(("cfg", "created_ts", "duration_s", "cost_usd"))


def _clean_text(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (undecodable bytes in another tool's metadata) cannot go into SQLite.
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def _finite(value: Any, default: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return default
    try:
        f = float(value)
    except OverflowError:
        return default
    return f if math.isfinite(f) else default


def row_values(row: dict[str, Any]) -> tuple[Any, ...]:
    """The INSERT parameters for one row dict, every value made storable.

    Metadata comes from files any tool may have written; a value SQLite cannot take (an
    integer past 64 bits, a float that is not a number, a stray type) becomes the column's
    default instead of failing the whole batch it arrives in. ``seed`` (an int) is stored
    as ``seed_text``. ``path`` is left as it is: without it the row means nothing.
    """
    out: list[Any] = []
    for c in ROW_COLUMNS:
        if c == "seed_text":
            seed = row.get("seed_text", row.get("seed"))
            if isinstance(seed, bool) or not isinstance(seed, (int, str)) or seed_from_text(seed) is None:
                out.append(None)
            else:
                out.append(str(int(seed)))
            continue
        value = row.get(c, _default(c))
        if c == "path":
            out.append(value)
        elif value is None:
            out.append(_default(c))
        elif c in _INTEGER_COLUMNS:
            ok = isinstance(value, int) and not isinstance(value, bool) and value in _INT64
            out.append(value if ok else _default(c))
        elif c in _REAL_COLUMNS:
            out.append(_finite(value, _default(c)))
        else:
            out.append(_clean_text(value))
    return tuple(out)
