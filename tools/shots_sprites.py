"""Screenshots of the Sprite Tools for review: before/after each tool, and a sheet with warnings.

    QT_QPA_PLATFORM=offscreen python tools/shots_sprites.py [--out screenshots]

Works headless (offscreen) or under Xvfb. The input is a Pillow-made "generation": a
character on a key-green background with blur and grain, plus an 8-frame walk where one
frame is shifted and one has another size, so the checks have something to say.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def character(size: int = 768, *, step: int = 0, shift: int = 0, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (0, 255, 0))
    d = ImageDraw.Draw(img)
    s = size / 768
    cx = 384 * s + shift * s
    leg = (step % 4 - 1.5) * 30 * s
    d.rectangle((cx - 70 * s + leg, 560 * s, cx - 20 * s + leg, 700 * s), fill=(60, 50, 120))  # legs
    d.rectangle((cx + 20 * s - leg, 560 * s, cx + 70 * s - leg, 700 * s), fill=(60, 50, 120))
    d.rounded_rectangle((cx - 110 * s, 300 * s, cx + 110 * s, 590 * s), 40 * s, fill=(200, 60, 50),
                        outline=(30, 20, 20), width=int(10 * s))  # body
    d.ellipse((cx - 100 * s, 90 * s, cx + 100 * s, 300 * s), fill=(240, 200, 160), outline=(30, 20, 20),
              width=int(10 * s))  # head
    d.ellipse((cx - 50 * s, 170 * s, cx - 20 * s, 205 * s), fill=(20, 20, 30))
    d.ellipse((cx + 20 * s, 170 * s, cx + 50 * s, 205 * s), fill=(20, 20, 30))
    d.polygon([(cx - 30 * s, 380 * s), (cx + 30 * s, 380 * s), (cx, 450 * s)], fill=(0, 255, 0))  # a green gem
    img = img.filter(ImageFilter.GaussianBlur(2 * s))
    noise = rng.normal(0, 5, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def strip(out: Path) -> None:
    """Core-only comparison: each tool's before and after, side by side, pixels enlarged."""
    from studio_core.sprites import background, palettes, pixelart, tiles

    src = character()
    cut = background.remove_background(src)
    px = pixelart.pixelate(cut, grid=32, palette=palettes.builtin_palette("PICO-8"), outline=(0, 0, 0))
    gb = pixelart.pixelate(cut, grid=32, palette=palettes.builtin_palette("Game Boy"), dither="ordered")
    grass = Image.linear_gradient("L").rotate(90).resize((32, 32))
    grass = Image.merge("RGB", (grass.point(lambda v: v // 3), grass.point(lambda v: 90 + v // 2), grass.point(lambda v: v // 4)))
    fixed = tiles.make_seamless(grass)
    panels = [("original", src), ("background removed", cut), ("32 px PICO-8 + outline", px),
              ("32 px Game Boy, ordered dither", gb), ("tile 3x3 before", tiles.repeat(grass)),
              ("tile 3x3 after fix", tiles.repeat(fixed))]
    cell = 256
    sheet = Image.new("RGBA", (cell * len(panels), cell + 24), (40, 40, 40, 255))
    d = ImageDraw.Draw(sheet)
    checker = Image.new("RGBA", (cell, cell), (204, 204, 204, 255))
    cd = ImageDraw.Draw(checker)
    for y in range(0, cell, 16):
        for x in range(0, cell, 16):
            if (x + y) // 16 % 2:
                cd.rectangle((x, y, x + 15, y + 15), fill=(153, 153, 153, 255))
    for i, (label, img) in enumerate(panels):
        img = img.convert("RGBA")
        factor = cell // max(img.size)
        img = pixelart.upscale(img, factor) if factor >= 1 else img.resize((cell, cell), Image.Resampling.LANCZOS)
        tile = checker.copy()
        tile.alpha_composite(img, ((cell - img.width) // 2, (cell - img.height) // 2))
        sheet.paste(tile, (i * cell, 24))
        d.text((i * cell + 6, 5), label, fill=(255, 255, 255, 255))
    sheet.save(out / "sprites_tools_strip.png")


async def gui_shots(out: Path, work: Path) -> None:
    from tests.gui.conftest import wait_until  # the same helper the tests use

    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.sprites import StylePicker, open_sprite_tools

    core = await StudioCore.open(AppPaths.portable(work / "home"))
    try:
        one = work / "hero.png"
        character().save(one)
        dlg = open_sprite_tools(None, core, [one])
        dlg.resize(1200, 760)
        tab = dlg.sprite_tab
        await wait_until(lambda: tab.pipeline is not None and not tab._busy and not tab.after.image().isNull())
        dlg.grab().save(str(out / "sprites_1_opened.png"))
        tab.remove_bg.click()
        await wait_until(lambda: not tab._busy and len(tab.pipeline.steps) == 1, timeout=30)
        dlg.grab().save(str(out / "sprites_2_background.png"))
        tab.palette.setCurrentIndex(tab.palette.findText("PICO-8"))
        tab.outline.setChecked(True)
        tab.pixel_button.click()
        await wait_until(lambda: not tab._busy and len(tab.pipeline.steps) == 2, timeout=30)
        dlg.grab().save(str(out / "sprites_3_pixelart.png"))
        tab.tile_button.click()
        await wait_until(lambda: not tab._busy and len(tab.pipeline.steps) == 3, timeout=30)
        tab.tile_preview.setChecked(True)
        dlg.grab().save(str(out / "sprites_4_tile3x3.png"))
        tab.undo_button.click()
        await wait_until(lambda: not tab._busy and len(tab.pipeline.steps) == 2, timeout=30)
        tab.tile_preview.setChecked(False)
        dlg.close()

        frames = []
        for i in range(8):
            p = work / f"walk_{i}.png"
            img = character(step=i, shift=90 if i == 5 else 0, seed=i)
            if i == 7:
                img = img.resize((640, 640))
            img.save(p)
            frames.append(p)
        dlg = open_sprite_tools(None, core, frames)
        dlg.resize(1200, 760)
        st, sh = dlg.sprite_tab, dlg.sheet_tab
        await wait_until(lambda: st.pipeline is not None and not st._busy)
        st.remove_bg.click()
        await wait_until(lambda: not st._busy and len(st.pipeline.steps) == 1, timeout=30)
        st.palette.setCurrentIndex(st.palette.findText("PICO-8"))
        st.pixel_button.click()
        await wait_until(lambda: not st._busy and len(st.pipeline.steps) == 2, timeout=30)
        sh.align.setChecked(False)
        sh.format_checks["tiled"].setChecked(True)
        sh.build()
        await wait_until(lambda: not sh._busy and sh.preview.files(), timeout=60)
        dlg.grab().save(str(out / "sprites_5_sheet_warnings.png"))
        sh.align.setChecked(True)
        sh.build()
        t0 = time.monotonic()
        await wait_until(lambda: not sh._busy and time.monotonic() - t0 > 0.2, timeout=60)
        dlg.grab().save(str(out / "sprites_6_sheet_aligned.png"))
        dlg.close()

        picker = StylePicker()
        await picker.load()
        picker.resize(520, 40)
        picker.grab().save(str(out / "sprites_7_style_picker.png"))
    finally:
        await core.aclose()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "screenshots")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    strip(args.out)

    import qasync
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)  # closing one dialog must not end the loop mid-run
    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    with tempfile.TemporaryDirectory() as tmp, loop:
        loop.run_until_complete(gui_shots(args.out, Path(tmp)))
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
