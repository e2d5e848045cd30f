"""Screenshots of the gallery: the Saved tab with a few hundred sprites, the detail pane,
the empty first-run state and the clean-up dialog.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python tools/shots_gallery.py
    QT_QPA_PLATFORM=offscreen .venv/bin/python tools/shots_gallery.py    # also works

PNGs go to screenshots/ (git-ignored). The sprites are made with Pillow and saved
through the studio's own saving code, so they carry real metadata.
"""

from __future__ import annotations

import asyncio
import io
import random
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "screenshots"

ADJ = ["red", "blue", "green", "golden", "ancient", "tiny", "frozen", "burning", "shadow", "crystal", "mossy", "royal"]
THING = ["slime", "goblin", "dragon", "bat", "ghost", "beetle", "knight", "potion", "mushroom", "skull", "crab", "wisp"]
SERVICES = [("comfyui", "sd_xl_base_1.0.safetensors", None), ("huggingface", "FLUX.1-schnell", 0.003),
            ("replicate", "rd-fast", 0.004), ("openai", "gpt-image-1", 0.04), ("bedrock", "titan-image-v2", 0.01)]


def sprite(rnd: random.Random, px: int) -> bytes:
    """A symmetric pixel creature (the classic invader generator) on a transparent background."""
    from PIL import Image

    n = rnd.choice([8, 10, 12, 16])
    body = (rnd.randint(60, 255), rnd.randint(60, 255), rnd.randint(60, 255), 255)
    dark = tuple(max(0, c - 90) for c in body[:3]) + (255,)
    img = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    half = (n + 1) // 2
    cells = [[rnd.random() < 0.5 for _ in range(half)] for _ in range(n)]
    for y in range(n):
        for x in range(half):
            if cells[y][x] and 0 < y < n - 1:
                c = dark if (y + x) % 5 == 0 else body
                img.putpixel((x, y), c)
                img.putpixel((n - 1 - x, y), c)
    eye_y = n // 3
    for ex in (half - 2, n - half + 1):
        if 0 <= ex < n:
            img.putpixel((ex, eye_y), (255, 255, 255, 255))
    if rnd.random() < 0.25:  # some opaque backgrounds, as cloud services often return
        bg = Image.new("RGBA", (n, n), (rnd.randint(20, 60),) * 3 + (255,))
        bg.alpha_composite(img)
        img = bg
    img = img.resize((px, px), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def populate(images: Path, count: int) -> None:
    from studio_core.models import GenerationRequest, QualityTier
    from studio_core.storage.images import save_generated_image

    rnd = random.Random(7)
    now = datetime.now(timezone.utc)
    for i in range(count):
        service, model, cost = rnd.choice(SERVICES)
        prompt = f"{rnd.choice(ADJ)} {rnd.choice(THING)}, pixel art game sprite, transparent background"
        req = GenerationRequest(prompt=prompt, service=service, model=model, negative_prompt="blurry, text, watermark",
                                width=512, height=512, steps=rnd.choice([4, 20, 30]), cfg=rnd.choice([1.0, 6.0, 7.5]),
                                seed=rnd.randint(1, 2**31), quality=rnd.choice(list(QualityTier)))
        info = {"duration_s": round(rnd.uniform(1.5, 25), 1)}
        if cost:
            info.update(cost_usd=cost, provider=service)
        save_generated_image(sprite(rnd, rnd.choice([64, 128, 256])), req, folder=images, seed=req.seed,
                             when=now - timedelta(minutes=37 * (count - i)), info=info)


async def shoot(app, home: Path, *, empty: bool) -> None:
    from PySide6.QtWidgets import QMainWindow, QTabWidget, QWidget

    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.gallery.saved_tab import SavedTab
    from studio_gui.tasks import TaskOwner
    from tests.gui.conftest import wait_until

    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    tasks = TaskOwner()
    win = QMainWindow()
    tabs = QTabWidget()
    tabs.setDocumentMode(True)
    win.generate_tab = QWidget()
    win.tabs = tabs
    tab = SavedTab(core, tasks=tasks)
    tabs.addTab(win.generate_tab, "&Generate")
    tabs.addTab(tab, "&Saved")
    tabs.setCurrentWidget(tab)
    win.setCentralWidget(tabs)
    win.setWindowTitle("Cloud AI Art Studio")
    win.resize(1360, 860)
    win.show()
    try:
        await tab.started()
        await wait_until(lambda: not tab.model.fetching, timeout=30)
        if empty:
            await asyncio.sleep(0.3)
            win.grab().save(str(OUT / "gallery_empty.png"))
            return
        await wait_until(lambda: tab.model.rowCount() > 0, timeout=30)
        tab.view.setCurrentIndex(tab.model.index(2, 0))
        fav = tab.model.record(2)
        await core.index.set_favourite([fav.id, tab.model.record(5).id], True)
        await wait_until(lambda: tab.detail.full_image is not None, timeout=10)
        await asyncio.sleep(0.2)
        await wait_until(lambda: tab.loader.pending_count == 0, timeout=30)
        await asyncio.sleep(0.3)
        win.grab().save(str(OUT / "gallery_saved_tab.png"))
        tab.detail.grab().save(str(OUT / "gallery_detail_pane.png"))
        tab.filters.search.setText("dragon")
        await wait_until(lambda: tab.model.total and all(
            "dragon" in tab.model.record(r).prompt for r in range(tab.model.rowCount())), timeout=10)
        await asyncio.sleep(0.2)
        await wait_until(lambda: tab.loader.pending_count == 0, timeout=30)
        tab.view.setCurrentIndex(tab.model.index(0, 0))
        await asyncio.sleep(0.4)
        win.grab().save(str(OUT / "gallery_search.png"))
        tab.filters.favourites.setChecked(True)
        tab.filters.search.setText("unicorn")
        await wait_until(lambda: tab.stack.currentWidget() is tab.no_match and "unicorn" in tab.no_match_title.text(),
                         timeout=10)
        await asyncio.sleep(0.2)
        win.grab().save(str(OUT / "gallery_no_match.png"))
        tab.filters.favourites.setChecked(False)
        tab.view.clearSelection()
        tab.detail.show_record(None)
        await asyncio.sleep(0.1)
        tab.detail.grab().save(str(OUT / "gallery_detail_nothing_selected.png"))
        tab.filters.search.clear()
        from studio_gui.gallery.cleanup_dialog import CleanupDialog

        dlg = CleanupDialog(core, tasks=tasks, parent=win)
        dlg.use_age.setChecked(True)
        dlg.days.setValue(5)
        dlg.open()
        await wait_until(lambda: dlg.model.rowCount() > 0, timeout=10)
        await asyncio.sleep(0.5)
        dlg.grab().save(str(OUT / "gallery_cleanup.png"))
        dlg.reject()
    finally:
        tab.closing()
        await tasks.cancel_all()
        win.close()
        await core.aclose()


def main() -> int:
    from PySide6.QtWidgets import QApplication
    import qasync

    OUT.mkdir(exist_ok=True)
    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    app.setQuitOnLastWindowClosed(False)
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        (home / "data" / "images").mkdir(parents=True)
        loop.run_until_complete(shoot(app, Path(tmp) / "empty-home", empty=True))
        populate(home / "data" / "images", 300)
        loop.run_until_complete(shoot(app, home, empty=False))
    loop.close()  # shuts qasync's worker threads down; exiting with them alive aborts
    print("\n".join(str(p) for p in sorted(OUT.glob("gallery_*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
