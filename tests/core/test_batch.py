"""Batch runs: persisted, resumed after a SIGKILL with no duplicate and no missing image; pause and
resume; a broken CSV row; the set in the gallery; the contact sheet."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from studio_core.batch import BatchManager, BatchProgress, unique_name
from studio_core.models import GenerationRequest
from studio_core.pool import prompt_list
from studio_core.storage.images import read_metadata
from studio_core.storage.records import ImageQuery
from tests.conftest import run_async
from tests.fakes import FakeProvider

ROOT = Path(__file__).resolve().parents[2]


def csv_of(n: int, *, broken_row: int | None = None) -> str:
    lines = ["prompt,negative,seed,width,height,count"]
    for i in range(n):
        if broken_row is not None and i + 2 == broken_row:
            lines.append(f"potion {i},,not-a-seed,64,64,1")
        else:
            lines.append(f"potion {i},blurry,{100 + i},64,64,1")
    return "\n".join(lines) + "\n"


def jobs_of(text: str) -> tuple[list, list]:
    batch = prompt_list.expand(prompt_list.parse_csv(text))
    return batch.jobs, batch.problems


def png_files(paths) -> list[Path]:
    return sorted(p for p in Path(paths.images).rglob("*.png"))


CHILD = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from studio_core.app_core import StudioCore
    from studio_core.batch import BatchManager
    from studio_core.models import GenerationRequest
    from studio_core.paths import AppPaths
    from studio_core.pool import prompt_list
    from studio_core.storage.records import ImageQuery
    from tests.fakes import FakeProvider

    async def main():
        core = await StudioCore.open(AppPaths.portable(Path({home!r})), lock=True, use_keyring=False)
        fake = FakeProvider(steps=2, delay=0.04)
        core.jobs.provider_for = lambda service: fake
        plist = prompt_list.read_file(Path({csv!r}))
        jobs = prompt_list.expand(plist).jobs
        manager = BatchManager(core, window=3)
        await manager.start("potions", GenerationRequest("", service="comfyui", steps=4), jobs)
        while await core.index.count(ImageQuery()) < 10:
            await asyncio.sleep(0.01)
        await core.queue_store.flush()
        print("READY", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main())
""")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_a_batch_of_30_from_a_csv_killed_midway_resumes_to_30_images_with_no_duplicate(paths, isolated_home, tmp_path):
    csv_file = tmp_path / "potions.csv"
    csv_file.write_text(csv_of(30), "utf-8")
    proc = subprocess.Popen([sys.executable, "-c", CHILD.format(root=str(ROOT), home=str(isolated_home),
                                                                csv=str(csv_file))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    before_jobs = {read_metadata(f).request.option("batch_job") for f in png_files(paths)}
    before = len(before_jobs)
    assert 10 <= before < 30 and before == len(png_files(paths))  # really stopped in the middle

    async def main():
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths, lock=True, use_keyring=False)
        fake = FakeProvider(steps=1)
        core.jobs.provider_for = lambda service: fake
        try:
            manager = BatchManager(core)
            [run] = await manager.open()
            assert run.rec.name == "potions" and run.state == "paused"  # waits for the user
            # the jobs the queue kept from the killed run belong to the batch, not to "waiting"
            assert not any(w.request.option("batch_id") for w in core.session.waiting)
            run.resume()
            await run.wait()
            assert run.state == "finished"
            made_now = [r.option("batch_job") for r in fake.requests]
            records = await core.index.query(ImageQuery(set_name="potions"), limit=1000)
            return made_now, records, run.progress()
        finally:
            await core.aclose()

    made_now, records, progress = run_async(main())
    files = png_files(paths)
    jobs, _ = jobs_of(csv_of(30))
    job_of_file = [read_metadata(f).request.option("batch_job") for f in files]
    assert len(files) == 30 and sorted(job_of_file) == sorted(j.id for j in jobs)  # none twice, none missing
    assert len(records) == 30
    assert len(made_now) == 30 - before and not set(made_now) & before_jobs  # only what was missing ran
    assert progress.done == 30 and progress.total == 30 and progress.failed == 0


def _core_with(paths, fake):
    from studio_core.app_core import StudioCore

    async def open_core():
        core = await StudioCore.open(paths, use_keyring=False)
        core.jobs.provider_for = lambda service: fake
        return core

    return open_core()


def test_pause_stops_handing_out_jobs_and_resume_finishes_them(paths):
    jobs, _ = jobs_of(csv_of(8))

    async def main():
        fake = FakeProvider(steps=3, delay=0.02)
        core = await _core_with(paths, fake)
        events: list[BatchProgress] = []
        core.changes.subscribe(events.append, BatchProgress)
        try:
            manager = BatchManager(core, window=2)
            run = await manager.start("pause me", GenerationRequest("", service="comfyui"), jobs)
            while len(run.done) < 2:
                await asyncio.sleep(0.01)
            run.pause()
            await run.wait()  # the loop ends once the running jobs are in
            paused_at = len(fake.requests)
            await asyncio.sleep(0.2)
            assert len(fake.requests) == paused_at < 8  # nothing new while paused
            assert run.state == "paused" and len(run.done) == paused_at
            run.resume()
            await run.wait()
            return run, fake, events, paused_at
        finally:
            await core.aclose()

    run, fake, events, paused_at = run_async(main())
    assert run.state == "finished" and len(run.done) == 8 and len(fake.requests) == 8
    assert {"running", "paused", "finished"} <= {e.state for e in events}
    assert events[-1].done == 8 and events[-1].eta_s == 0.0
    assert len(png_files(paths)) == 8


def test_cancel_stops_the_running_jobs_and_keeps_what_is_saved(paths):
    jobs, _ = jobs_of(csv_of(6))

    async def main():
        fake = FakeProvider(steps=200, delay=0.02)
        core = await _core_with(paths, fake)
        try:
            manager = BatchManager(core, window=2)
            run = await manager.start("stop", GenerationRequest("", service="comfyui"), jobs)
            while len(fake.requests) < 1:
                await asyncio.sleep(0.01)
            run.cancel()
            await run.wait()
            await asyncio.sleep(0.05)
            return run, fake
        finally:
            await core.aclose()

    run, fake = run_async(main())
    assert run.state == "cancelled" and fake.cancelled and len(fake.requests) <= 2
    assert run.rec.failed == {}  # a cancelled job is not a failure


def test_a_csv_with_a_broken_row_runs_the_other_rows_and_names_the_row(paths):
    jobs, problems = jobs_of(csv_of(5, broken_row=3))
    assert [str(p) for p in problems] == ["Row 3: seed 'not-a-seed' is not a number"]

    async def main():
        core = await _core_with(paths, FakeProvider(steps=1))
        try:
            run = await BatchManager(core).start("four", GenerationRequest("", service="comfyui"), jobs)
            await run.wait()
            return run
        finally:
            await core.aclose()

    run = run_async(main())
    assert len(jobs) == 4 and len(png_files(paths)) == 4 and run.state == "finished"
    prompts = sorted(read_metadata(f).request.prompt for f in png_files(paths))
    assert prompts == ["potion 0", "potion 2", "potion 3", "potion 4"]


def test_a_missing_word_list_is_named_and_other_rows_run(tmp_path):
    plist = prompt_list.parse_lines("a __colors__ slime\na red potion")
    from studio_core.pool.wildcards import WordLists

    batch = prompt_list.expand(plist, lists=WordLists(tmp_path / "words"))
    assert [j.prompt for j in batch.jobs] == ["a red potion"]
    [problem] = batch.problems
    assert problem.row == 1 and "__colors__" in problem.message and "colors.txt" in problem.message


def test_a_failing_job_is_recorded_by_row_and_the_rest_go_on(paths):
    from studio_core.errors import GenerationFailed

    jobs, _ = jobs_of(csv_of(3))

    class FailsSecond(FakeProvider):
        async def generate(self, request, *, job_id):
            if request.prompt == "potion 1":
                raise GenerationFailed("boom", user_message="The server said no.")
            async for ev in super().generate(request, job_id=job_id):
                yield ev

    async def main():
        core = await _core_with(paths, FailsSecond(steps=1))
        try:
            manager = BatchManager(core)
            run = await manager.start("fails", GenerationRequest("", service="comfyui"), jobs)
            await run.wait()
            await asyncio.sleep(0.05)  # the state file write
            again = BatchManager(core)
            [reloaded] = await again.open()
            return run, reloaded
        finally:
            await core.aclose()

    run, reloaded = run_async(main())
    assert run.state == "paused" and len(run.done) == 2  # not "finished": one image is missing
    [(job_id, why)] = run.rec.failed.items()
    assert why.startswith("Row 3:") and "said no" in why
    assert reloaded.rec.failed == run.rec.failed and reloaded.total == 3


def test_names_are_unique_per_batch():
    assert unique_name("potions", []) == "potions"
    assert unique_name("potions", ["potions"]) == "potions 2"
    assert unique_name("potions", ["potions", "potions 2"]) == "potions 3"
    assert unique_name("  ", []) == "Batch"


def test_the_set_column_is_read_back_from_the_file_by_a_rescan(paths):
    jobs, _ = jobs_of(csv_of(2))

    async def main():
        core = await _core_with(paths, FakeProvider(steps=1))
        try:
            run = await BatchManager(core).start("heroes", GenerationRequest("", service="comfyui"), jobs)
            await run.wait()
        finally:
            await core.aclose()
        # The index is lost (or the kill came between the file and its row): rebuilt from the files.
        conn = sqlite3.connect(paths.index_file)
        conn.execute("DELETE FROM images")
        conn.commit()
        conn.close()
        from studio_core.app_core import StudioCore

        core = await StudioCore.open(paths, use_keyring=False)
        try:
            await core.index.rescan()
            names = await core.index.set_names()
            saved = await core.index.batch_jobs_saved(run.rec.id)
            in_set = await core.index.count(ImageQuery(set_name="heroes"))
            other = await core.index.count(ImageQuery(set_name="nope"))
            return names, saved, in_set, other
        finally:
            await core.aclose()

    names, saved, in_set, other = run_async(main())
    assert names == ["heroes"] and saved == {j.id for j in jobs} and in_set == 2 and other == 0


def test_contact_sheet_size_and_captions(tmp_path):
    from PIL import Image, ImageChops

    from studio_core.storage.contact_sheet import CAPTION_LINES, CELL, FONT_PX, PAD, write_contact_sheet

    items = []
    for i in range(5):
        p = tmp_path / f"{i}.png"
        Image.new("RGBA", (512, 256), (40 * i, 100, 200, 255)).save(p)
        items.append((p, f"caption {i}"))
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    items.append((broken, "broken"))
    dest = write_contact_sheet(items, tmp_path / "sheet.png", columns=4)
    with Image.open(dest) as sheet:
        sheet.load()
    cell_h = CELL + PAD + CAPTION_LINES * (FONT_PX + 4)
    assert sheet.size == (PAD + 4 * (CELL + PAD), PAD + 2 * (cell_h + PAD))
    # a 512×256 image is fitted into its 256-px cell (256×128, centred vertically)
    assert sheet.getpixel((PAD + 128, PAD + 128)) == (0, 100, 200)
    assert sheet.getpixel((PAD + 128, PAD + 10)) == (255, 255, 255)

    def caption_ink(n: int) -> int:
        x, y = PAD + (n % 4) * (CELL + PAD), PAD + (n // 4) * (cell_h + PAD) + CELL + PAD // 2
        area = sheet.crop((x, y, x + CELL, y + CAPTION_LINES * (FONT_PX + 4)))
        return sum(area.convert("L").histogram()[:128])

    assert all(caption_ink(n) > 20 for n in range(6))  # each cell has its caption drawn
    empty = sheet.crop((PAD + 2 * (CELL + PAD), PAD + cell_h + PAD, sheet.width, sheet.height))
    assert ImageChops.difference(empty, Image.new("RGB", empty.size, (255, 255, 255))).getbbox() is None
    assert not list(tmp_path.glob(".tmp-*"))  # written atomically


def test_contact_sheet_caption_wraps_and_cuts():
    from studio_core.storage.contact_sheet import _font, wrap

    font = _font(13)
    lines = wrap("a very long prompt " * 20, font, 200, 2)
    assert len(lines) == 2 and lines[-1].endswith("…") and all(font.getlength(l) <= 200 for l in lines)
    assert wrap("short", font, 200, 2) == ["short"]
    assert wrap("", font, 200, 2) == []
