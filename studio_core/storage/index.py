"""ImageIndex: the gallery's SQLite index (WAL, FTS5 over prompts), rebuildable from files.

One worker thread owns the connection (Anki's collection executor): every public method
is ``async`` and runs its SQL there, so the GUI thread never waits on the disk and the
connection is never shared between threads. Listeners (plain callables) are called on
the event loop after a change commits.

Crash safety comes from the order of operations rather than from a transaction spanning
file and row: the image file is written (atomically) before its row, and :meth:`open`
reconciles the folder listing with the rows, so after a kill there is never a row
without a file nor a file without a row.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from studio_core.errors import NotAnImage, StorageError
from studio_core.models import GenerationRequest, SavedImage
from studio_core.paths import AppPaths
from studio_core.storage import rescan
from studio_core.storage.records import (
    ImageQuery,
    ImageRecord,
    IndexStats,
    ReconcileReport,
    ServiceStats,
    SpendSummary,
)
from studio_core.storage.schema import (  # noqa: F401  (re-exported for tools and tests)
    _INSERT_SQL,
    _SELECT,
    MIGRATIONS,
    ROW_COLUMNS,
    SCHEMA_VERSION,
    _default,
    _storage_error,
    _to_record,
    row_values,
)
from studio_core.storage.search import fts_query

log = logging.getLogger(__name__)

# Above this many text matches, walking the date index and probing the matches finds a page
# sooner than sorting all matches (measured at 100k rows: 4 ms vs 31 ms for ~6k matches).
_WALK_INDEX_ABOVE = 1500
_BATCH = 500
_DIFF_CHUNK = 10_000  # rows per worker call while a background rescan reads the index (~10 ms)
# What a single bad row raises while binding or inserting (as opposed to a disk or lock
# problem, which every row would hit the same way).
_ROW_ERRORS = (OverflowError, ValueError, TypeError, sqlite3.InterfaceError, sqlite3.ProgrammingError,
               sqlite3.IntegrityError, sqlite3.DataError)

Listener = Callable[..., Any]


def _loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        # qasync runs leftover callbacks (task steps) after run_until_complete returns,
        # outside a "running" loop; the loop itself is still the current one.
        return asyncio.get_event_loop()


async def to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """``asyncio.to_thread`` that also works in qasync's leftover callbacks (see ``_loop``)."""
    return await _loop().run_in_executor(None, fn, *args)


class IndexDamaged(Exception):
    """Internal: the file is not a usable index (corrupt, or from a newer app)."""


class ImageIndex:
    """The gallery index. Create with :meth:`open`; close with :meth:`aclose`.

    All methods are coroutines running on one private worker thread; they raise
    StorageError (DiskFull, read-only folder…) with a user message, never sqlite3 errors.
    ``messages`` collects what the user should hear about from opening (a rebuild).
    """

    reconcile_delay_s = 1.5

    def __init__(self, images: Path, db_file: Path):
        self.images = Path(images)
        self.db_file = Path(db_file)
        self.messages: list[str] = []
        self.last_reconcile = ReconcileReport()
        # Listeners, called on the loop: record_added(rec), records_removed(ids),
        # records_changed(recs) and reloaded() after a bulk change (rescan, import).
        self.record_added: list[Listener] = []
        self.records_removed: list[Listener] = []
        self.records_changed: list[Listener] = []
        self.reloaded: list[Listener] = []
        self._exec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-index")
        self._conn: sqlite3.Connection | None = None
        self._startup_scan: asyncio.Future | None = None
        self._closed = False
        self.pacer = rescan.Pacer()

    # -- lifecycle ------------------------------------------------------------------
    @classmethod
    async def open(cls, paths: AppPaths) -> ImageIndex:
        """Open (or create, or rebuild) the index and reconcile it with the images folder."""
        index = cls(paths.images, paths.index_file)
        try:
            reconciled = await index._run(index._open_sync)
        except BaseException:
            index._exec.shutdown(wait=False)
            raise
        if not reconciled:
            # An intact index is usable at once. The reconcile (a listing of every file)
            # runs in the background; if it finds changes, listeners hear `reloaded`.
            index._startup_scan = asyncio.ensure_future(index._startup_reconcile())
        return index

    async def _startup_reconcile(self) -> None:
        # Let the first screen (a page query, a few thumbnails) go first: listing 100k files
        # competes with it for the worker and the GIL, and nothing depends on it finishing.
        await asyncio.sleep(self.reconcile_delay_s)
        try:
            report = await self.rescan()
        except StorageError as exc:
            log.warning("reconcile on open failed: %s", exc)
            return
        self._report_unreadable(report)

    def _report_unreadable(self, report: ReconcileReport) -> None:
        if report.unreadable:
            shown = ", ".join(report.unreadable[:3]) + (" …" if len(report.unreadable) > 3 else "")
            self.messages.append(
                f"{len(report.unreadable)} file(s) in the images folder are not readable images and are not shown: {shown}")

    async def aclose(self) -> None:
        if self._closed:
            return
        if self._startup_scan is not None and not self._startup_scan.done():
            # Safe to stop between steps: each one is its own transaction, and the next
            # start reconciles again.
            self._startup_scan.cancel()
            await asyncio.gather(self._startup_scan, return_exceptions=True)
        self._closed = True

        def close() -> None:
            if self._conn is not None:
                try:
                    self._conn.execute("PRAGMA optimize")
                except sqlite3.Error:
                    pass
                self._conn.close()
                self._conn = None

        try:
            await _loop().run_in_executor(self._exec, close)
        finally:
            self._exec.shutdown(wait=True)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self._closed:
            raise StorageError("index closed", user_message="The gallery is closing.")
        return await _loop().run_in_executor(self._exec, fn, *args)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_file, timeout=5.0)
        conn.execute("PRAGMA journal_mode=WAL")
        # NORMAL loses no committed transaction when the *process* dies (only on power loss),
        # and the reconcile on open repairs even that case from the files.
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise IndexDamaged(f"index schema {version} is newer than this app's {SCHEMA_VERSION}")
        for step in range(version, SCHEMA_VERSION):
            with conn:
                for sql in MIGRATIONS[step]:
                    conn.execute(sql)
                conn.execute(f"PRAGMA user_version={step + 1}")
            log.info("index schema upgraded to %d", step + 1)

    def _open_sync(self) -> bool:
        """Open or rebuild; True when the folder was already reconciled (a rebuild)."""
        self.images.mkdir(parents=True, exist_ok=True)
        existed = self.db_file.exists() and self.db_file.stat().st_size > 0
        damaged: str | None = None
        try:
            self._conn = self._connect()
            self._migrate(self._conn)
            # Touch the table so a damaged file fails here, not on the first query.
            self._conn.execute("SELECT max(id), count(*) FROM images").fetchone()
            if existed:
                return False
            report = self._reconcile_sync()
        except (sqlite3.DatabaseError, IndexDamaged) as exc:
            if isinstance(exc, sqlite3.OperationalError) and not isinstance(exc, IndexDamaged) and \
                    ("readonly" in str(exc).lower() or "unable to open" in str(exc).lower()):
                raise _storage_error(exc, "open index") from exc
            log.warning("index unusable (%s); rebuilding from files", exc)
            damaged = self._move_aside()
            self._conn = self._connect()
            self._migrate(self._conn)
            report = self._reconcile_sync()
        self.last_reconcile = report
        n = self._conn.execute("SELECT count(*) FROM images").fetchone()[0]
        if damaged is not None:
            self.messages.append(
                f"The gallery index was damaged, so it was rebuilt from your {n} image files."
                f" Nothing was lost; the damaged copy was kept as {damaged}.")
        elif not existed and report.added:
            self.messages.append(f"The gallery index was missing, so it was rebuilt from your {n} image files.")
        self._report_unreadable(report)
        return True

    def _move_aside(self) -> str:
        if self._conn is not None:
            try:
                self._conn.close()
            except sqlite3.Error:
                pass
            self._conn = None
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.db_file.with_name(f"{self.db_file.name}.damaged-{stamp}")
        try:
            self.db_file.replace(aside)
        except OSError:
            self.db_file.unlink(missing_ok=True)
        for suffix in ("-wal", "-shm"):
            Path(str(self.db_file) + suffix).unlink(missing_ok=True)
        return aside.name

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("index not open", user_message="The gallery index is not open.")
        return self._conn

    # -- notifications ----------------------------------------------------------------
    @staticmethod
    def _notify(listeners: Iterable[Listener], *args: Any) -> None:
        for cb in list(listeners):
            try:
                cb(*args)
            except Exception:
                log.exception("gallery index listener failed")

    # -- writes ----------------------------------------------------------------------
    def _write_rows(self, rows: Iterable[dict[str, Any]]) -> list[str]:
        """Upsert ``rows``; return the paths of rows that could not be stored at all.

        One row SQLite refuses (a file name it cannot encode…) must not cost the rest of
        an import batch, nor stop a rebuild at start-up: the batch is then written row by
        row and only the refused rows are left out (and logged)."""
        conn = self.conn
        rows = list(rows)
        values = [row_values(r) for r in rows]
        try:
            with conn:
                conn.executemany(_INSERT_SQL, values)
            return []
        except _ROW_ERRORS as exc:
            log.warning("a row of %d was refused (%s); writing them one by one", len(rows), exc)
        except sqlite3.Error as exc:
            raise _storage_error(exc, "write rows") from exc
        refused: list[str] = []
        try:
            with conn:
                for r, v in zip(rows, values):
                    try:
                        conn.execute(_INSERT_SQL, v)
                    except _ROW_ERRORS as exc:
                        log.warning("not indexed: %r (%s)", r.get("path"), exc)
                        refused.append(str(r.get("path")))
        except sqlite3.Error as exc:
            raise _storage_error(exc, "write rows") from exc
        return refused

    def _by_paths(self, paths: Sequence[str]) -> list[ImageRecord]:
        out: list[ImageRecord] = []
        for i in range(0, len(paths), _BATCH):
            chunk = paths[i:i + _BATCH]
            out += [_to_record(r) for r in self.conn.execute(
                f"{_SELECT} WHERE path IN ({','.join('?' * len(chunk))})", chunk)]
        return out

    def _add_saved_sync(self, saved: SavedImage) -> ImageRecord:
        row = rescan.row_from_saved(self.images, saved)
        if self._write_rows([row]):
            raise StorageError(f"row refused for {row['path']!r}",
                               user_message=f"{Path(saved.path).name} is saved, but the gallery could not list it.")
        return self._by_paths([row["path"]])[0]

    async def add_saved(self, saved: SavedImage) -> ImageRecord:
        rec = await self._run(self._add_saved_sync, saved)
        self._notify(self.record_added, rec)
        return rec

    async def on_image_saved(self, saved: SavedImage) -> None:
        """Called by ``Session.announce`` for each file on disk. The file is already safe;
        if its row cannot be written now, the next start's reconcile adds it, so only log."""
        try:
            await self.add_saved(saved)
        except StorageError as exc:
            log.warning("could not index %s: %s", saved.path, exc)

    async def set_favourite(self, ids: Sequence[int], value: bool) -> list[ImageRecord]:
        def work() -> list[ImageRecord]:
            try:
                with self.conn:
                    self.conn.executemany("UPDATE images SET favourite=? WHERE id=?", [(int(value), i) for i in ids])
            except sqlite3.Error as exc:
                raise _storage_error(exc, "favourite") from exc
            return self._get_many_sync(ids)

        recs = await self._run(work)
        self._notify(self.records_changed, recs)
        return recs

    async def set_tags(self, id_: int, tags: Sequence[str]) -> ImageRecord | None:
        clean = ", ".join(t.strip().replace(",", " ") for t in tags if t.strip())

        def work() -> list[ImageRecord]:
            try:
                with self.conn:
                    self.conn.execute("UPDATE images SET tags=? WHERE id=?", (clean, id_))
            except sqlite3.Error as exc:
                raise _storage_error(exc, "tags") from exc
            return self._get_many_sync([id_])

        recs = await self._run(work)
        self._notify(self.records_changed, recs)
        return recs[0] if recs else None

    async def remove(self, ids: Sequence[int]) -> None:
        """Drop rows (the caller has already trashed or lost the files)."""
        ids = list(ids)

        def work() -> None:
            try:
                with self.conn:
                    self.conn.executemany("DELETE FROM images WHERE id=?", [(i,) for i in ids])
            except sqlite3.Error as exc:
                raise _storage_error(exc, "remove") from exc

        await self._run(work)
        self._notify(self.records_removed, tuple(ids))

    # -- rescan / import --------------------------------------------------------------
    def _list_files(self, pacer: rescan.Pacer | None = None) -> dict[str, tuple[int, int]]:
        """The folder listing; any thread (it never touches the connection)."""
        temp: list[str] = []
        files = rescan.list_image_files(self.images, temp_files=temp, pacer=pacer)
        rescan.remove_stale_temp_files(temp)
        return files

    def _diff_sync(self, files: dict[str, tuple[int, int]]) -> tuple[list[str], list[int], dict[str, int]]:
        """(files to (re)read, row ids whose file is gone, {path: id} of changed rows)."""
        rows = {p: (i, s, m) for i, p, s, m in self.conn.execute("SELECT id, path, file_size, mtime_ns FROM images")}
        return rescan.diff_listing(files, rows, self.images)

    def _identities_sync(self, after_id: int, limit: int) -> list[tuple[str, tuple[int, int, int]]]:
        """One chunk of ``(path, (id, size, mtime_ns))`` by id, for the background diff."""
        try:
            return [(p, (i, s, m)) for i, p, s, m in self.conn.execute(
                "SELECT id, path, file_size, mtime_ns FROM images WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit))]
        except sqlite3.Error as exc:
            raise _storage_error(exc, "read the index for a rescan") from exc

    async def _quiet(self) -> None:
        """Wait while the user is scrolling the gallery (see :meth:`hold_background`)."""
        while (left := self.pacer.busy_for()) > 0:
            await asyncio.sleep(min(left, 0.05))  # a release ends the wait early
            self.pacer.waited_s += min(left, 0.05)

    def hold_background(self, seconds: float = 0.5) -> None:
        """The user is looking through the gallery: background work (the reconcile) waits
        until ``seconds`` have passed without another call. Cheap; call it on every scroll."""
        self.pacer.hold(seconds)

    def _read_rows(self, todo: list[str], files: dict[str, tuple[int, int]]) -> tuple[list[dict], list[str]]:
        """Metadata of ``todo`` from the files (disk + Pillow); any thread."""
        out, unreadable = [], []
        for rel in todo:
            size, mtime = files[rel]
            try:
                out.append(rescan.row_from_file(self.images, rel, size, mtime))
            except NotAnImage:
                unreadable.append(rel)
            except OSError as exc:  # vanished or unreadable between listing and reading
                log.warning("skipping %s: %s", rel, exc)
        return out, unreadable

    def _delete_ids_sync(self, ids: Sequence[int]) -> None:
        if not ids:
            return
        try:
            with self.conn:
                self.conn.executemany("DELETE FROM images WHERE id=?", [(i,) for i in ids])
        except sqlite3.Error as exc:
            raise _storage_error(exc, "drop missing rows") from exc

    def _reconcile_sync(self) -> ReconcileReport:
        """The whole reconcile on the calling (worker) thread: used while opening."""
        files = self._list_files()
        todo, gone, known = self._diff_sync(files)
        rows, unreadable = self._read_rows(todo, files)
        for i in range(0, len(rows), _BATCH):
            unreadable += self._write_rows(rows[i:i + _BATCH])
        refused = set(unreadable)
        rows = [r for r in rows if r["path"] not in refused]
        gone += [known[p] for p in unreadable if p in known]
        self._delete_ids_sync(gone)
        return _report(rows, known, gone, unreadable)

    async def _reconcile(self) -> ReconcileReport:
        # Listing and reading files happen off the index worker, which only does the
        # diff and the writes; the gallery's queries slip in between the steps.
        # In the background, while the user may scroll: every step paces itself and waits
        # while the gallery is being scrolled, so the GUI thread has the GIL to paint. The
        # index worker only reads the rows in chunks, so page queries slip in between.
        files = await to_thread(self._list_files, self.pacer)
        rows: dict[str, tuple[int, int, int]] = {}
        after = 0
        while True:
            await self._quiet()
            chunk = await self._run(self._identities_sync, after, _DIFF_CHUNK)
            rows.update(chunk)
            if len(chunk) < _DIFF_CHUNK:
                break
            after = chunk[-1][1][0]
        todo, gone, known = await to_thread(
            lambda: rescan.diff_listing(files, rows, self.images, pacer=self.pacer))
        all_rows: list[dict] = []
        unreadable: list[str] = []
        for i in range(0, len(todo), _BATCH):
            await self._quiet()
            got, bad = await to_thread(self._read_rows, todo[i:i + _BATCH], files)
            bad += await self._run(self._write_rows, got)
            all_rows += [{"path": r["path"]} for r in got if r["path"] not in bad]
            unreadable += bad
        gone += [known[p] for p in unreadable if p in known]
        await self._run(self._delete_ids_sync, gone)
        return _report(all_rows, known, gone, unreadable)

    async def rescan(self) -> ReconcileReport:
        """Re-read the images folder: add files dropped in by hand, refresh changed ones, drop
        rows whose file is gone. Favourites and tags of surviving files are kept."""
        report = await self._reconcile()
        self.last_reconcile = report
        if report.changed:
            self._notify(self.reloaded)
        return report

    @property
    def reconciling(self) -> bool:
        """Whether the reconcile that :meth:`open` started is still under way."""
        return self._startup_scan is not None and not self._startup_scan.done()

    async def wait_reconciled(self) -> None:
        """Wait for the reconcile that :meth:`open` started in the background."""
        if self._startup_scan is not None:
            await asyncio.gather(self._startup_scan, return_exceptions=True)

    async def import_folder(self, src: Path) -> tuple[ReconcileReport, list[str]]:
        """Copy another tool's output folder into the gallery and index it with its metadata.

        The copy runs on a separate thread so queries stay responsive meanwhile."""
        copied, problems = await to_thread(rescan.import_folder, Path(src), self.images)
        report = await self.rescan()
        return report, problems

    # -- reads ------------------------------------------------------------------------
    def _where(self, q: ImageQuery) -> tuple[list[str], list[Any]]:
        where: list[str] = []
        params: list[Any] = []
        match = fts_query(q.text)
        if match:
            where.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
            params.append(match)
        if q.service:
            where.append("service = ?")
            params.append(q.service)
        if q.set_name:
            where.append("set_name = ?")
            params.append(q.set_name)
        if q.model:
            where.append("model = ?")
            params.append(q.model)
        if q.favourites_only:
            where.append("favourite = 1")
        if q.since_ts is not None:
            where.append("created_ts >= ?")
            params.append(q.since_ts)
        if q.until_ts is not None:
            where.append("created_ts < ?")
            params.append(q.until_ts)
        return where, params

    def _before(self, q: ImageQuery, rec: ImageRecord) -> tuple[str, list[Any]]:
        """SQL condition for rows that sort strictly before ``rec`` in ``q``'s order."""
        if q.sort == "prompt":
            return ("(prompt COLLATE NOCASE < ? OR (prompt COLLATE NOCASE = ? AND id < ?))",
                    [rec.prompt, rec.prompt, rec.id])
        if q.sort == "oldest":
            return "(created_ts < ? OR (created_ts = ? AND id < ?))", [rec.created_ts, rec.created_ts, rec.id]
        return "(created_ts > ? OR (created_ts = ? AND id > ?))", [rec.created_ts, rec.created_ts, rec.id]

    def _query_sync(self, q: ImageQuery, after: ImageRecord | None, limit: int, offset: int = 0) -> list[ImageRecord]:
        where, params = self._where(q)
        # Keyset paging: a page starts after the last row shown, so rows inserted at the
        # top meanwhile neither shift nor duplicate the next page (and deep pages stay O(log n)).
        if q.sort == "prompt":
            order = "prompt COLLATE NOCASE ASC, id ASC"
            if after is not None:
                where.append("(prompt COLLATE NOCASE > ? OR (prompt COLLATE NOCASE = ? AND id > ?))")
                params += [after.prompt, after.prompt, after.id]
        elif q.sort == "oldest":
            order = "created_ts ASC, id ASC"
            if after is not None:
                where.append("(created_ts > ? OR (created_ts = ? AND id > ?))")
                params += [after.created_ts, after.created_ts, after.id]
        else:
            order = "created_ts DESC, id DESC"
            if after is not None:
                where.append("(created_ts < ? OR (created_ts = ? AND id < ?))")
                params += [after.created_ts, after.created_ts, after.id]
        source = _SELECT
        match = fts_query(q.text)
        if match and q.sort != "prompt" and self._fts_count(match) > _WALK_INDEX_ABOVE:
            source = f"{_SELECT} INDEXED BY images_created"
        sql = f"{source}{' WHERE ' + ' AND '.join(where) if where else ''} ORDER BY {order} LIMIT ? OFFSET ?"
        try:
            return [_to_record(r) for r in self.conn.execute(sql, (*params, limit, max(0, offset)))]
        except sqlite3.Error as exc:
            raise _storage_error(exc, "query") from exc

    async def query(self, q: ImageQuery, *, after: ImageRecord | None = None, limit: int = 500) -> list[ImageRecord]:
        """One page of records matching ``q`` in its sort order, starting after ``after``."""
        return await self._run(self._query_sync, q, after, limit)

    async def rows(self, q: ImageQuery, offset: int, limit: int) -> list[ImageRecord]:
        """Rows ``offset`` … ``offset + limit - 1`` of ``q``'s results (a windowed model's page)."""
        return await self._run(self._query_sync, q, None, limit, offset)

    async def rows_many(self, q: ImageQuery, runs: Sequence[tuple[int, int]]) -> list[list[ImageRecord]]:
        """Several ``(offset, limit)`` runs of ``q``'s results in one worker round trip."""
        return await self._run(lambda: [self._query_sync(q, None, n, o) for o, n in runs])

    def _rank_sync(self, q: ImageQuery, rec: ImageRecord) -> int:
        where, params = self._where(q)
        cond, extra = self._before(q, rec)
        where.append(cond)
        try:
            return self.conn.execute(f"SELECT count(*) FROM images WHERE {' AND '.join(where)}",
                                     (*params, *extra)).fetchone()[0]
        except sqlite3.Error as exc:
            raise _storage_error(exc, "rank") from exc

    async def rank(self, q: ImageQuery, rec: ImageRecord) -> int:
        """How many of ``q``'s results sort before ``rec``: its row in a view of ``q``."""
        return await self._run(self._rank_sync, q, rec)

    def _fts_count(self, match: str) -> int:
        return self.conn.execute("SELECT count(*) FROM images_fts WHERE images_fts MATCH ?", (match,)).fetchone()[0]

    def _count_sync(self, q: ImageQuery) -> int:
        match = fts_query(q.text)
        if match and q == ImageQuery(text=q.text, sort=q.sort):
            try:
                return self._fts_count(match)  # the FTS table alone answers a text-only count
            except sqlite3.Error as exc:
                raise _storage_error(exc, "count") from exc
        where, params = self._where(q)
        sql = f"SELECT count(*) FROM images{' WHERE ' + ' AND '.join(where) if where else ''}"
        try:
            return self.conn.execute(sql, params).fetchone()[0]
        except sqlite3.Error as exc:
            raise _storage_error(exc, "count") from exc

    async def count(self, q: ImageQuery = ImageQuery()) -> int:
        return await self._run(self._count_sync, q)

    async def first_page(self, q: ImageQuery, *, limit: int = 500) -> tuple[list[ImageRecord], int]:
        """The first page and the total count in one worker round trip."""
        return await self._run(lambda: (self._query_sync(q, None, limit), self._count_sync(q)))

    def _get_many_sync(self, ids: Sequence[int]) -> list[ImageRecord]:
        ids = list(ids)
        out: list[ImageRecord] = []
        for i in range(0, len(ids), _BATCH):
            chunk = ids[i:i + _BATCH]
            out += [_to_record(r) for r in self.conn.execute(f"{_SELECT} WHERE id IN ({','.join('?' * len(chunk))})", chunk)]
        return out

    async def get(self, id_: int) -> ImageRecord | None:
        recs = await self._run(self._get_many_sync, [id_])
        return recs[0] if recs else None

    async def request_for(self, rec: ImageRecord) -> GenerationRequest:
        """The full request that made ``rec`` (with per-service options), for "Reuse settings"."""
        def work() -> str:
            row = self.conn.execute("SELECT request_json FROM images WHERE id=?", (rec.id,)).fetchone()
            return row[0] if row else ""

        raw = await self._run(work)
        if raw:
            import json

            try:
                data = json.loads(raw)
                if isinstance(data, dict):
                    return GenerationRequest.from_dict(data)
            except ValueError:
                pass
        return rec.fallback_request()

    async def distinct_values(self) -> tuple[list[str], list[str]]:
        """(services, models) present in the index, for the filter menus."""
        def work():
            services = [r[0] for r in self.conn.execute("SELECT DISTINCT service FROM images WHERE service != '' ORDER BY 1")]
            models = [r[0] for r in self.conn.execute("SELECT DISTINCT model FROM images WHERE model != '' ORDER BY 1")]
            return services, models

        return await self._run(work)

    async def batch_jobs_saved(self, batch_id: str) -> set[str]:
        """Job ids of batch ``batch_id`` with an image in the gallery."""
        def work() -> set[str]:
            rows = self.conn.execute("SELECT DISTINCT batch_job FROM images WHERE batch_id = ? AND batch_job != ''",
                                     (batch_id,))
            return {r[0] for r in rows}

        return await self._run(work)

    async def set_names(self) -> list[str]:
        """The batch sets in the gallery, newest first."""
        def work() -> list[str]:
            return [r[0] for r in self.conn.execute(
                "SELECT set_name FROM images WHERE set_name != '' GROUP BY set_name ORDER BY max(created_ts) DESC")]

        return await self._run(work)

    async def stats(self) -> IndexStats:
        def work() -> IndexStats:
            per = [ServiceStats(s or "unknown", c, b or 0) for s, c, b in self.conn.execute(
                "SELECT service, count(*), sum(file_size) FROM images GROUP BY service ORDER BY count(*) DESC")]
            return IndexStats(count=sum(p.count for p in per), total_bytes=sum(p.total_bytes for p in per),
                              per_service=tuple(per))

        return await self._run(work)

    async def spend_summary(self, *, now: float | None = None) -> SpendSummary:
        """Estimated spend per provider per day and month, from the ``cost_usd`` of the images
        this install generated (imported images are left out)."""
        now = time.time() if now is None else now

        def work() -> SpendSummary:
            conn = self.conn
            prov = "CASE WHEN provider != '' THEN provider ELSE service END"
            # A cost stored in an imported image was paid by someone else, or earlier, elsewhere.
            spent = f"cost_usd IS NOT NULL AND origin != '{rescan.IMPORTED}'"
            day_rows = conn.execute(
                f"SELECT {prov}, date(created_ts, 'unixepoch') AS d, sum(cost_usd) FROM images"
                f" WHERE {spent} GROUP BY 1, 2 ORDER BY d DESC, 1").fetchall()
            month_rows = conn.execute(
                f"SELECT {prov}, strftime('%Y-%m', created_ts, 'unixepoch') AS m, sum(cost_usd) FROM images"
                f" WHERE {spent} GROUP BY 1, 2 ORDER BY m DESC, 1").fetchall()
            today = time.strftime("%Y-%m-%d", time.gmtime(now))
            month = today[:7]
            return SpendSummary(
                today=round(sum(c for _p, d, c in day_rows if d == today), 6),
                this_month=round(sum(c for _p, m, c in month_rows if m == month), 6),
                total=round(sum(c for _p, _m, c in month_rows), 6),
                per_day=tuple((p, d, round(c, 6)) for p, d, c in day_rows),
                per_month=tuple((p, m, round(c, 6)) for p, m, c in month_rows),
            )

        return await self._run(work)

    async def cleanup_candidates(self, *, older_than_days: int | None, budget_bytes: int | None,
                                 now: float | None = None) -> list[ImageRecord]:
        """Images a clean-up would remove, oldest first: older than ``older_than_days`` and/or
        the oldest ones beyond ``budget_bytes`` of total size. Favourites never qualify."""
        now = time.time() if now is None else now

        def work() -> list[ImageRecord]:
            chosen: dict[int, ImageRecord] = {}
            if older_than_days is not None and older_than_days > 0:
                cutoff = now - older_than_days * 86400
                for r in self.conn.execute(f"{_SELECT} WHERE favourite = 0 AND created_ts < ? ORDER BY created_ts, id",
                                           (cutoff,)):
                    rec = _to_record(r)
                    chosen[rec.id] = rec
            if budget_bytes is not None and budget_bytes > 0:
                total = self.conn.execute("SELECT coalesce(sum(file_size), 0) FROM images").fetchone()[0]
                total -= sum(r.file_size for r in chosen.values())
                if total > budget_bytes:
                    for r in self.conn.execute(f"{_SELECT} WHERE favourite = 0 ORDER BY created_ts, id"):
                        if total <= budget_bytes:
                            break
                        rec = _to_record(r)
                        if rec.id not in chosen:
                            chosen[rec.id] = rec
                            total -= rec.file_size
            return sorted(chosen.values(), key=lambda r: (r.created_ts, r.id))

        return await self._run(work)

    def abs_path(self, rec: ImageRecord) -> Path:
        return self.images / rec.path


def _report(rows: list[dict], known: dict[str, int], gone: list[int], unreadable: list[str]) -> ReconcileReport:
    updated = sum(1 for r in rows if r["path"] in known)
    return ReconcileReport(added=len(rows) - updated, updated=updated, removed=len(gone),
                           unreadable=tuple(unreadable))
