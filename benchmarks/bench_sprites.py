"""Sprite processing speed against Pillow alone, measured in the same run.

    python benchmarks/bench_sprites.py [--runs 15]

1. A 1024×1024 generated-looking image → 64×64, 16 colours: the studio's pixel-art path
   (k-centroid or dominant-colour grid downscale, palette from the image, alpha snap)
   vs Pillow's own resize + quantize. Goal: ≤ 2× Pillow and < 100 ms.
2. Packing 64 frames of 64×64 (8 directions × 8 frames) into a sheet with Aseprite JSON
   and Godot .tres written, vs Pillow pasting the same frames into one image and saving it.
3. For the record: key-colour background removal on the same 1024×1024 image.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from studio_core.sprites import background, exporters, pixelart, sheet  # noqa: E402


def generated_like(size: int = 1024, seed: int = 1) -> Image.Image:
    """A subject on a key-green background, with the soft edges and grain of a diffusion image."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (size, size), (0, 255, 0))
    d = ImageDraw.Draw(img)
    s = size / 1024
    d.ellipse((250 * s, 180 * s, 780 * s, 900 * s), fill=(150, 40, 60), outline=(30, 20, 25), width=int(18 * s))
    d.ellipse((380 * s, 330 * s, 470 * s, 430 * s), fill=(250, 250, 240))
    d.ellipse((560 * s, 330 * s, 650 * s, 430 * s), fill=(250, 250, 240))
    d.rectangle((300 * s, 880 * s, 720 * s, 960 * s), fill=(90, 60, 30))
    img = img.filter(ImageFilter.GaussianBlur(2 * s))
    noise = rng.normal(0, 6, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def timed(fn, runs: int) -> float:
    fn()  # warm-up: numpy/Pillow first-call costs are not what a user waits for twice
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    img = generated_like()
    cut = background.remove_background(img)
    rows = []

    pil_rgb = timed(lambda: img.resize((64, 64), Image.Resampling.BOX).quantize(16), args.runs)
    ours_kc = timed(lambda: pixelart.pixelate(img, grid=64, palette=16), args.runs)
    ours_dom = timed(lambda: pixelart.pixelate(img, grid=64, palette=16, method="dominant"), args.runs)
    pil_rgba = timed(lambda: cut.resize((64, 64), Image.Resampling.BOX).quantize(16, method=Image.Quantize.FASTOCTREE),
                     args.runs)
    ours_rgba = timed(lambda: pixelart.pixelate(cut, grid=64, palette=16), args.runs)
    rows += [("1024² RGB → 64² 16 colours: Pillow resize(BOX)+quantize", pil_rgb, None),
             ("  studio pixelate, k-centroid", ours_kc, ours_kc / pil_rgb),
             ("  studio pixelate, dominant colour", ours_dom, ours_dom / pil_rgb),
             ("1024² RGBA → 64² 16 colours: Pillow resize+quantize(octree)", pil_rgba, None),
             ("  studio pixelate, k-centroid", ours_rgba, ours_rgba / pil_rgba)]

    frames = [pixelart.pixelate(generated_like(256, seed=i), grid=64, palette=16) for i in range(64)]
    # An 8-direction walk, 8 frames each: 8 Aseprite tags and 8 Godot animations.
    dirs = ("down", "down_left", "left", "up_left", "up", "up_right", "right", "down_right")
    sheet_frames = [sheet.SheetFrame(f"walk_{dirs[i // 8]}_{i % 8:02d}", f, f"walk_{dirs[i // 8]}")
                    for i, f in enumerate(frames)]
    with tempfile.TemporaryDirectory() as tmp:
        def pil_sheet():
            out = Image.new("RGBA", (8 * 64, 8 * 64))
            for i, f in enumerate(frames):
                out.paste(f, ((i % 8) * 64, (i // 8) * 64))
            out.save(Path(tmp) / "pil.png")

        def ours_sheet():
            packed = sheet.pack(sheet_frames, padding=1, extrude=1)
            exporters.export_sheet(packed, Path(tmp), "walk", ["aseprite-hash", "godot"])

        pil_s = timed(pil_sheet, args.runs)
        ours_s = timed(ours_sheet, args.runs)
    rows += [("64 frames 64² → sheet PNG: Pillow paste+save", pil_s, None),
             ("  studio pack(grid, pad 1, extrude 1) + PNG + Aseprite JSON + .tres", ours_s, ours_s / pil_s)]

    bg = timed(lambda: background.remove_background(img), max(3, args.runs // 3))
    rows.append(("background removal 1024² (flood fill + soft edge + de-spill)", bg, None))

    print(f"{'case':<72} {'ms':>8} {'× Pillow':>9}")
    for name, ms, ratio in rows:
        print(f"{name:<72} {ms:8.1f} {'' if ratio is None else f'{ratio:8.2f}×':>9}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
