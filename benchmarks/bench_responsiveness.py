"""Responsiveness: the longest stall of the GUI thread while the app does real work.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_responsiveness.py [--profile]

A 1 ms precise ``QTimer`` on the GUI thread records when it actually fires; its lateness
(gap between two ticks minus 1 ms) is how long the GUI thread could not answer a click
or paint a frame. Reported per scenario: p99 and max lateness, and the worst stalls with
when they happened. Goal: p99 ≤ 16 ms (a frame at 60 Hz) and max ≤ 50 ms in each case.

The scenarios drive the real main window (the same ``StudioCore`` + ``MainWindow`` that
``main.py`` builds, keys kept out of the keyring):

  idle      the window doing nothing: the machine's own noise, a floor for the rest
  import    Saved tab → import a folder of 1,000 PNGs (512², with A1111 parameters as
            ComfyUI/A1111 write them) until the grid shows them with thumbnails
  comfyui   a job through the Generate button against tests/comfy_fake_server.py, run in
            its own thread so its work is not counted: 30 steps with a 512² JPEG live
            preview each, until the image is saved and shown
  scroll    the gallery of 100,000 1024² images (benchmarks/bench_gallery.py's data, made
            on first use) dragged from top to bottom in ~3 s, until the last screen shows
            its thumbnails
  settings  the Settings dialog opened and left open for a second, then closed

``--profile`` adds, per scenario, the GUI thread's stack caught during each stall over
30 ms (a watchdog thread dumps it through faulthandler) and a cProfile of the scenario
(all threads: Python 3.12's profiler is process-wide). Profiling slows Python code down,
so the stall figures of a profiled run are not the ones to report.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from PySide6.QtCore import QObject, Qt, QTimer  # noqa: E402

NOTES: list[str] = []  # what the scenarios learnt on the way (printed with the results)
P99_GOAL_MS = 16.0
MAX_GOAL_MS = 50.0


class StallProbe(QObject):
    """A 1 ms precise timer on the GUI thread; records how late each tick came.

    With ``catch_ms``, a watchdog thread writes the GUI thread's Python stack (through
    faulthandler, safe from another thread) whenever a tick is that late, so a stall
    can be traced to what the GUI thread was doing during it.
    """

    def __init__(self, catch_ms: float | None = None):
        super().__init__()
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(1)
        self.timer.timeout.connect(self._tick)
        self.ticks: list[float] = []
        self.catch_s = catch_ms / 1000 if catch_ms else None
        self.caught: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self.ticks = [time.perf_counter()]
        self.timer.start()
        if self.catch_s:
            self._stop.clear()
            self._watch = threading.Thread(target=self._watchdog, daemon=True)
            self._watch.start()

    def _tick(self) -> None:
        self.ticks.append(time.perf_counter())

    def _watchdog(self) -> None:
        import faulthandler

        main = f"{threading.main_thread().ident:#018x}"
        dumped_for = None
        while not self._stop.wait(0.003):
            last = self.ticks[-1]
            if time.perf_counter() - last > self.catch_s and dumped_for != last:
                dumped_for = last
                with tempfile.TemporaryFile("w+") as fh:
                    faulthandler.dump_traceback(fh, all_threads=True)
                    fh.seek(0)
                    text = fh.read()
                # Keep the GUI thread's section: the app's own frames say what it was doing.
                block = next((b for b in text.split("\n\n") if main in b.splitlines()[0]), text)
                frames = [ln.strip() for ln in block.splitlines()[1:] if "/work/" in ln or "studio" in ln][:6]
                self.caught.append((last - self.ticks[0], "\n      ".join(frames) or block[:300]))

    def stop(self) -> dict:
        self.timer.stop()
        self._stop.set()
        if self._watch is not None:
            self._watch.join(1)
        t = self.ticks
        late = sorted(((b - a - 0.001) * 1000, a - t[0]) for a, b in zip(t, t[1:]))
        ms = [x for x, _ in late]
        p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))] if ms else 0.0
        return {"duration_s": t[-1] - t[0], "ticks": len(ms), "p99_ms": p99, "max_ms": ms[-1] if ms else 0.0,
                "median_ms": statistics.median(ms) if ms else 0.0,
                "worst": [(round(x, 1), round(at, 2)) for x, at in reversed(late[-5:])]}


async def until(cond, timeout: float, step: float = 0.01, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what or 'end'} within {timeout:.0f} s")
        await asyncio.sleep(step)


def on_screen(view, limit: int = 400) -> list[int]:
    """Rows of the top of the grid whose tiles the viewport shows."""
    model, area = view.model(), view.viewport().rect()
    return [r for r in range(min(limit, model.rowCount())) if area.intersects(view.visualRect(model.index(r, 0)))]


class App:
    """The real main window on a data folder, as ``studio_gui.app.run`` builds it."""

    def __init__(self, data: Path):
        self.data = data

    async def __aenter__(self):
        from studio_core.app_core import StudioCore
        from studio_core.paths import AppPaths
        from studio_gui.main_window import MainWindow

        self.core = await StudioCore.open(AppPaths.portable(self.data), use_keyring=False, open_index=False)
        await self.core.ensure_index()
        if not self.core.settings.current.first_run_done:
            self.core.settings.update(first_run_done=True)  # the first-run panel is not what is measured
        self.window = MainWindow(self.core, ui={})
        self.window.resize(1280, 800)
        self.window.show()
        await self.window.started()
        await asyncio.sleep(1.0)  # start-up checks and the Saved tab built while idle have finished
        return self

    async def __aexit__(self, *exc):
        self.window.close()
        await self.window.tasks.cancel_all()
        await self.core.aclose()


# -- data ------------------------------------------------------------------------------


def import_folder(root: Path, count: int = 1000) -> Path:
    """``count`` 512² PNGs with A1111 ``parameters`` (hard links to 8 distinct files)."""
    folder = root / f"import-{count}"
    if (folder / "ready").exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "src").mkdir(parents=True)
    import numpy as np
    from PIL import Image, ImageDraw, PngImagePlugin

    sources = []
    for k in range(8):
        rnd = random.Random(k)
        rng = np.random.default_rng(k)
        img = Image.new("RGB", (512, 512), tuple(rnd.randint(0, 255) for _ in range(3)))
        d = ImageDraw.Draw(img)
        for _ in range(5):
            x, y, r = rnd.randint(0, 400), rnd.randint(0, 400), rnd.randint(40, 160)
            d.ellipse((x, y, x + r, y + r), fill=tuple(rnd.randint(0, 255) for _ in range(3)))
        arr = np.clip(np.asarray(img, dtype=np.float32) + rng.normal(0, 5, (512, 512, 3)), 0, 255).astype(np.uint8)
        info = PngImagePlugin.PngInfo()
        info.add_text("parameters", f"a {['red', 'blue', 'green'][k % 3]} potion, pixel art\n"
                                    f"Negative prompt: blurry\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
                                    f"Seed: {1000 + k}, Size: 512x512, Model: sd15")
        p = folder / "src" / f"s{k}.png"
        Image.fromarray(arr, "RGB").save(p, pnginfo=info)
        sources.append(p)
    for i in range(count):
        os.link(sources[i % len(sources)], folder / f"ComfyUI_{i:05d}_.png")
    shutil.rmtree(folder / "src")
    (folder / "ready").write_text("ok")
    return folder


def gallery_data(count: int) -> Path:
    """bench_gallery.py's 100,000-image folder (made on first use, a few minutes)."""
    import bench_gallery

    cache = Path(os.environ.get("STUDIO_BENCH_CACHE", Path.home() / ".cache" / "studio-bench"))
    root = cache / f"gallery1024-{count}"
    bench_gallery.prepare(root, count)
    return root


# -- scenarios ---------------------------------------------------------------------------


async def scenario_idle(app: App) -> None:
    await asyncio.sleep(2.0)


async def scenario_import(app: App, folder: Path) -> None:
    from studio_gui.gallery.model import ThumbStateRole

    w = app.window
    w.tabs.setCurrentIndex(1)
    tab = w.saved_tab
    await until(lambda: tab.model.rowCount() >= 0 and not tab.model.fetching, 30)
    before = tab.model.total
    t = time.perf_counter()
    await tab.import_folder(folder)
    await until(lambda: tab.model.total >= before + 1000, 120, what=f"1,000 more rows (have {tab.model.total - before})")
    NOTES.append(f"import: copying and indexing {tab.model.total - before:,} images took {time.perf_counter() - t:.1f} s")
    await until(lambda: all(tab.model.index(r, 0).data(ThumbStateRole) != "loading" for r in on_screen(tab.view)), 60,
                what="thumbnails of the first screen")


def _serve_comfy(ready: list, stop: threading.Event) -> None:
    """The fake ComfyUI in a thread of its own, with 512² JPEG previews like a real server's."""
    import tests.comfy_fake_server as fake_mod
    from PIL import Image

    buf = io.BytesIO()
    img = Image.effect_mandelbrot((512, 512), (-2, -1.5, 1, 1.5), 80).convert("RGB")
    img.save(buf, format="JPEG", quality=85)
    preview = buf.getvalue()
    fake_mod.jpeg = lambda *a, pad_to=0, **k: preview + b"\0" * max(0, pad_to - len(preview))

    async def main():
        async with fake_mod.FakeComfyServer(behaviour=fake_mod.Behaviour(step_delay=0.05)) as server:
            ready.append(server.url)
            while not stop.is_set():
                await asyncio.sleep(0.05)

    asyncio.run(main())


async def scenario_comfyui(app: App) -> None:
    from studio_core.jobs import JobSaved
    from studio_core.models import JobCancelled, JobFailed

    ready: list[str] = []
    stop = threading.Event()
    th = threading.Thread(target=_serve_comfy, args=(ready, stop), daemon=True)
    th.start()
    try:
        await until(lambda: bool(ready), 20)
        core, w = app.core, app.window
        core.settings.update(comfy_url=ready[0], selected_service="comfyui")
        w.tabs.setCurrentIndex(0)
        tab = w.generate_tab
        await asyncio.sleep(1.0)  # the ComfyUI panel reads the server's models
        done: asyncio.Future = asyncio.get_running_loop().create_future()

        def on_event(ev) -> None:
            if done.done():
                return
            if isinstance(ev, JobSaved):
                done.set_result(ev)
            elif isinstance(ev, (JobFailed, JobCancelled)):
                done.set_exception(RuntimeError(f"job ended: {ev!r}"))

        unsubscribe = core.changes.subscribe(on_event, JobSaved, JobFailed, JobCancelled)
        try:
            tab.prompt_panel.prompt.setPlainText("a red health potion, game item icon")
            steps = getattr(tab.basic_settings, "steps", None)
            if steps is not None and hasattr(steps, "setValue"):
                steps.setValue(30)
            if tab.generate() is None:
                raise RuntimeError(f"Generate refused: {tab.problem()}")
            await asyncio.wait_for(done, 120)
            await asyncio.sleep(0.5)  # the saved image arrives in the session grid
        finally:
            unsubscribe()
    finally:
        stop.set()
        th.join(10)


async def scenario_scroll(app: App) -> None:
    from PySide6.QtWidgets import QAbstractItemView

    from studio_gui.gallery.model import ThumbStateRole

    w = app.window
    w.tabs.setCurrentIndex(1)
    tab = w.saved_tab
    await until(lambda: tab.model.rowCount() > 1000, 60)
    view, model = tab.view, tab.model
    sb = view.verticalScrollBar()
    steps = 200
    for i in range(1, steps + 1):
        # A drag of the scroll bar's handle: the position follows the mouse, one frame at a time.
        sb.setValue(round(sb.maximum() * i / steps))
        await asyncio.sleep(0.016)
    last = model.rowCount() - 1

    def at_end() -> bool:
        view.scrollTo(model.index(last, 0), QAbstractItemView.ScrollHint.PositionAtBottom)
        return view.viewport().rect().intersects(view.visualRect(model.index(last, 0))) and all(
            model.index(r, 0).data(ThumbStateRole) == "ready" for r in range(last - 5, last + 1))

    await until(at_end, 60, step=0.016)
    # The background rescan gives way while the grid is scrolled (ImageIndex.hold_background):
    # say how long it waited, so a quiet figure is not mistaken for a rescan that never ran.
    index = app.core.index
    pacer = getattr(index, "pacer", None)
    if pacer is not None:
        NOTES.append(f"scroll: the background rescan waited {pacer.waited_s:.1f} s for the scrolling"
                     f" ({'still under way' if index.reconciling else 'done'}"
                     " when the last screen showed)")


async def scenario_settings(app: App) -> None:
    from studio_gui.settings_dialog import SettingsDialog

    app.window.open_settings()
    await asyncio.sleep(1.0)
    for dlg in app.window.findChildren(SettingsDialog):
        dlg.close()
    await asyncio.sleep(0.2)


# -- running -------------------------------------------------------------------------------


async def measure(name: str, fn, *, profile: bool) -> dict:
    probe = StallProbe(catch_ms=30 if profile else None)
    prof = cProfile.Profile() if profile else None
    await asyncio.sleep(0.2)
    probe.start()
    if prof:
        prof.enable()
    error = ""
    try:
        await fn()
    except Exception as exc:  # a scenario that breaks is reported, not hidden
        error = f"{type(exc).__name__}: {exc}"
    finally:
        if prof:
            prof.disable()
        out = probe.stop()
    out["name"], out["error"] = name, error
    if prof:
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("tottime").print_stats(14)
        out["profile"] = s.getvalue()
        out["caught"] = probe.caught
    return out


async def run_all(args) -> list[dict]:
    results = []
    work = Path(tempfile.mkdtemp(prefix="studio-resp-"))
    try:
        folder = import_folder(Path(os.environ.get("STUDIO_BENCH_CACHE", Path.home() / ".cache" / "studio-bench")))
        wanted = args.only or ["idle", "import", "comfyui", "settings", "scroll"]
        small = [s for s in wanted if s != "scroll"]
        if small:
            async with App(work / "data") as app:
                table = {"idle": lambda: scenario_idle(app), "import": lambda: scenario_import(app, folder),
                         "comfyui": lambda: scenario_comfyui(app), "settings": lambda: scenario_settings(app)}
                for name in small:
                    results.append(await measure(name, table[name], profile=args.profile))
        if "scroll" in wanted:
            root = gallery_data(args.count)
            async with App(root) as app:
                results.append(await measure("scroll", lambda: scenario_scroll(app), profile=args.profile))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", action="store_true", help="print the GUI thread's busiest functions per scenario")
    ap.add_argument("--count", type=int, default=100_000, help="gallery size for the scroll scenario")
    ap.add_argument("--only", nargs="*", choices=["idle", "import", "comfyui", "settings", "scroll"])
    args = ap.parse_args()

    # Modules imported on first use (Settings, the ComfyUI client…) load from compiled
    # bytecode as on a user's machine, even where PYTHONDONTWRITEBYTECODE is set.
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(Path(tempfile.gettempdir()) / "studio-bench-pycache")

    from PySide6.QtWidgets import QApplication
    import qasync

    app = QApplication.instance() or QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    app.setStyle("Fusion")
    results = asyncio.run(run_all(args), loop_factory=qasync.QEventLoop)

    print(f"\n== GUI-thread stalls (1 ms probe), Qt {app.platformName()}; goal p99 ≤ {P99_GOAL_MS:.0f} ms,"
          f" max ≤ {MAX_GOAL_MS:.0f} ms ==")
    print(f"{'scenario':10} {'secs':>6} {'ticks':>7} {'median':>7} {'p99 ms':>7} {'max ms':>7}  verdict  worst stalls (ms @ s)")
    for r in results:
        ok = r["p99_ms"] <= P99_GOAL_MS and r["max_ms"] <= MAX_GOAL_MS and not r["error"]
        worst = ", ".join(f"{ms}@{at}" for ms, at in r["worst"][:4])
        print(f"{r['name']:10} {r['duration_s']:6.1f} {r['ticks']:7d} {r['median_ms']:7.2f} {r['p99_ms']:7.1f}"
              f" {r['max_ms']:7.1f}  {'met   ' if ok else 'MISSED'}   {worst}")
        if r["error"]:
            print(f"{'':10} scenario failed: {r['error']}")
    for note in NOTES:
        print(note)
    if args.profile:
        for r in results:
            print(f"\n-- {r['name']}: the GUI thread's stack during stalls over 30 ms --")
            for at, frames in r.get("caught", [])[:12]:
                print(f"  @{at:.2f} s\n      {frames}")
            print(f"-- {r['name']}: all threads, by own time (cProfile on 3.12 sees every thread) --\n"
                  f"{r.get('profile', '')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
