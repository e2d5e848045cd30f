"""An undoable list of sprite steps over one original image.

Each step is a frozen dataclass with ``apply(image) -> image``; the pipeline keeps the
original and the image after every step, so undo is dropping the last one (no
recomputation). :func:`save_result` writes the result *beside* the original under a
new name; the original file is never opened for writing.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image, PngImagePlugin

from studio_core.sprites import background, pixelart, tiles
from studio_core.sprites.palettes import Palette
from studio_core.storage.atomic import atomic_write_bytes
from studio_core.storage.images import STUDIO_CHUNK

SPRITE_CHUNK = "studio-sprite"


class Step(Protocol):
    def apply(self, img: Image.Image) -> Image.Image: ...

    @property
    def label(self) -> str: ...


@dataclass(frozen=True, slots=True)
class RemoveBackground:
    tolerance: float = 48
    softness: float = 48
    despill: bool = True

    @property
    def label(self) -> str:
        return "Remove background"

    def apply(self, img: Image.Image) -> Image.Image:
        return background.remove_background(img, tolerance=self.tolerance, softness=self.softness, despill=self.despill)


@dataclass(frozen=True, slots=True)
class PixelArt:
    """Grid, alpha snap, palette (a Palette, or ``colours`` picked from the image), outline."""

    grid: int = 32
    method: pixelart.Method = "kcentroid"
    palette: Palette | None = None
    colours: int = 16
    dither: pixelart.Dither = "none"
    outline: tuple[int, int, int] | None = None
    alpha_snap: bool = True

    @property
    def label(self) -> str:
        pal = self.palette.name if self.palette else f"{self.colours} colours"
        return f"Pixel art {self.grid} px, {pal}"

    def apply(self, img: Image.Image) -> Image.Image:
        return pixelart.pixelate(img, grid=self.grid, method=self.method,
                                 palette=self.palette if self.palette else self.colours,
                                 dither=self.dither, outline=self.outline, alpha_snap=self.alpha_snap)


@dataclass(frozen=True, slots=True)
class Outline:
    colour: tuple[int, int, int] = (0, 0, 0)

    @property
    def label(self) -> str:
        return "Outline"

    def apply(self, img: Image.Image) -> Image.Image:
        return pixelart.add_outline(img, self.colour)


@dataclass(frozen=True, slots=True)
class MakeTileable:
    blend: float = 0.25

    @property
    def label(self) -> str:
        return "Make tileable"

    def apply(self, img: Image.Image) -> Image.Image:
        return tiles.make_seamless(img, blend=self.blend)


def step_to_dict(step: Step) -> dict:
    d = dataclasses.asdict(step) if dataclasses.is_dataclass(step) else {}
    d["step"] = type(step).__name__
    return d


class SpritePipeline:
    """Not thread-safe: one owner applies steps (in a worker thread is fine, one at a time)."""

    def __init__(self, original: Image.Image, *, source: Path | None = None):
        self.source = Path(source) if source else None
        self.original = original.copy()
        self._steps: list[Step] = []
        self._images: list[Image.Image] = []

    @classmethod
    def open(cls, path: Path) -> SpritePipeline:
        from studio_core.errors import NotAnImage

        try:
            with Image.open(path) as img:
                img.load()
                return cls(img.convert("RGBA"), source=path)
        except (OSError, ValueError, SyntaxError) as exc:
            raise NotAnImage(f"{path}: {exc}", user_message=f"{Path(path).name} is not an image the studio can read.") from exc

    @property
    def steps(self) -> tuple[Step, ...]:
        return tuple(self._steps)

    @property
    def current(self) -> Image.Image:
        return self._images[-1] if self._images else self.original

    def apply(self, step: Step) -> Image.Image:
        """Run ``step`` on the current image; on error nothing changes."""
        result = step.apply(self.current)
        self._steps.append(step)
        self._images.append(result)
        return result

    def undo(self) -> Step | None:
        if not self._steps:
            return None
        self._images.pop()
        return self._steps.pop()

    def reset(self) -> None:
        self._steps.clear()
        self._images.clear()

    def describe(self) -> list[dict]:
        return [step_to_dict(s) for s in self._steps]


def encode_result(img: Image.Image, *, steps: list[dict], source: Path | None) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text(SPRITE_CHUNK, json.dumps({"source": source.name if source else "", "steps": steps}, default=str))
    if source is not None:
        # Keep how the original was made, so the gallery still shows its prompt and seed.
        try:
            with Image.open(source) as orig:
                text = dict(getattr(orig, "text", {}) or {})
        except (OSError, ValueError, SyntaxError):
            text = {}
        for key in ("parameters", STUDIO_CHUNK):
            if isinstance(text.get(key), str):
                info.add_text(key, text[key])
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def result_path(source: Path, suffix: str = "sprite") -> Path:
    return source.with_name(f"{source.stem}_{suffix}.png")


def save_result(pipeline: SpritePipeline, *, folder: Path | None = None, suffix: str = "sprite") -> Path:
    """Write the current image as a new PNG beside the original (``<stem>_sprite.png``,
    then ``-2``, ``-3``…) and return its path. Never replaces any existing file."""
    source = pipeline.source
    if source is None and folder is None:
        raise ValueError("an unsaved image needs a folder")
    folder = Path(folder) if folder else source.parent  # type: ignore[union-attr]
    stem = f"{source.stem}_{suffix}" if source else suffix
    data = encode_result(pipeline.current, steps=pipeline.describe(), source=source)
    for n in range(1, 10_000):
        target = folder / (f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
        try:
            atomic_write_bytes(target, data, exclusive=True)
        except FileExistsError:
            continue
        return target
    raise FileExistsError(stem)
