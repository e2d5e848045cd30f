"""The Sprite tab: background removal, pixel-art mode and tileable, with undo, on one image.

Every step runs in a worker thread on a SpritePipeline; the GUI thread only turns the
returned bytes into QImages. Results are saved beside the original, never over it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from PIL import Image
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio_core.errors import StudioError
from studio_core.sprites import palettes, pipeline, pixelart, tiles
from studio_core.sprites.palettes import Palette
from studio_core.sprites.pipeline import MakeTileable, PixelArt, RemoveBackground, SpritePipeline, Step
from studio_gui.sprites.preview import FileDragSource, SpritePreview
from studio_gui.sprites.rendered import Rendered, drag_folder, render, write_png
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)
AUTO_COLOURS = (8, 16, 32)


@dataclass(frozen=True)
class StepOutcome:
    before: Rendered | None
    after: Rendered
    seamless: bool
    steps: tuple[str, ...]
    drag_file: Path


class SpriteTab(QWidget):
    """Signals ``result_saved(Path)`` after "Save beside original"."""

    result_saved = Signal(Path)
    busy_changed = Signal(bool)

    def __init__(self, *, drag_base: Path, tasks: TaskOwner, on_saved: Callable[[Path], object] | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._drag_base = drag_base
        self._tasks = tasks
        self._on_saved = on_saved
        self._pipelines: dict[Path, SpritePipeline] = {}
        self._path: Path | None = None
        self._busy = False
        self._custom_palettes: list[Palette] = []
        self._build()
        self._set_enabled()

    # -- layout ---------------------------------------------------------------------
    def _build(self) -> None:
        self.images = QListWidget()
        self.images.setMaximumWidth(180)
        self.images.setAccessibleName("Images")
        self.images.currentItemChanged.connect(self._on_images_current)

        self.before = SpritePreview("Before")
        self.after = FileDragSource("After — drag me out")
        previews = QHBoxLayout()
        previews.addWidget(self.before, 1)
        previews.addWidget(self.after, 1)

        # Background
        self.tolerance = QSlider(Qt.Orientation.Horizontal)
        self.tolerance.setRange(5, 150)
        self.tolerance.setValue(48)
        self.tolerance.setAccessibleName("Background tolerance")
        self.tolerance.setToolTip("How far from the edge colour a pixel may be and still count as background")
        self.remove_bg = QPushButton("Remove background")
        self.remove_bg.setToolTip("Make the plain background around the subject transparent")
        self.remove_bg.clicked.connect(lambda: self.apply_step(RemoveBackground(tolerance=self.tolerance.value())))
        bg_box = QGroupBox("Background")
        bg = QFormLayout(bg_box)
        bg.addRow("Tolerance", self.tolerance)
        bg.addRow(self.remove_bg)

        # Pixel art
        self.grid = QComboBox()
        for g in pixelart.GRID_CHOICES:
            self.grid.addItem(f"{g} px", g)
        self.grid.addItem("Custom…", 0)
        self.grid.setCurrentIndex(1)
        self.grid.setAccessibleName("Pixel grid")
        self.custom_grid = QSpinBox()
        self.custom_grid.setRange(4, 512)
        self.custom_grid.setValue(24)
        self.custom_grid.setVisible(False)
        self.custom_grid.setAccessibleName("Custom grid size")
        self.grid.currentIndexChanged.connect(lambda _: self.custom_grid.setVisible(self.grid.currentData() == 0))
        grid_row = QHBoxLayout()
        grid_row.addWidget(self.grid)
        grid_row.addWidget(self.custom_grid)
        self.method = QComboBox()
        self.method.addItem("Clusters (k-centroid)", "kcentroid")
        self.method.addItem("Most common colour", "dominant")
        self.method.setAccessibleName("Downscale method")
        self.palette = QComboBox()
        self.palette.setAccessibleName("Palette")
        self._fill_palettes()
        self.palette.activated.connect(self._on_palette_activated)
        self.dither = QComboBox()
        self.dither.addItem("Off", "none")
        self.dither.addItem("Ordered (Bayer)", "ordered")
        self.dither.setAccessibleName("Dithering")
        self.outline = QCheckBox("1-px outline")
        self.alpha_snap = QCheckBox("Alpha on/off only")
        self.alpha_snap.setChecked(True)
        self.pixel_button = QPushButton("Apply pixel art")
        self.pixel_button.clicked.connect(lambda: self.apply_step(self.pixel_step()))
        px_box = QGroupBox("Pixel art")
        px = QFormLayout(px_box)
        px.addRow("Grid", grid_row)
        px.addRow("Downscale", self.method)
        px.addRow("Palette", self.palette)
        px.addRow("Dithering", self.dither)
        px.addRow(self.outline)
        px.addRow(self.alpha_snap)
        px.addRow(self.pixel_button)

        # Tiles
        self.tile_button = QPushButton("Make tileable")
        self.tile_button.setToolTip("Blend the edges so the tile repeats without a visible seam")
        self.tile_button.clicked.connect(lambda: self.apply_step(MakeTileable()))
        self.tile_preview = QCheckBox("3×3 repeat preview")
        self.tile_preview.toggled.connect(lambda on: self.after.set_tiles(3 if on else 1))
        self.seam_label = QLabel("")
        tile_box = QGroupBox("Tile")
        tl = QFormLayout(tile_box)
        tl.addRow(self.tile_button)
        tl.addRow(self.tile_preview)
        tl.addRow(self.seam_label)

        # History and saving
        self.steps_label = QLabel("No steps yet")
        self.steps_label.setWordWrap(True)
        self.undo_button = QPushButton("Undo")
        self.undo_button.setShortcut("Ctrl+Z")
        self.undo_button.setToolTip("Undo the last step (Ctrl+Z)")
        self.undo_button.clicked.connect(self.undo)
        self.save_button = QPushButton("Save beside original")
        self.save_button.setToolTip("Write the result as a new PNG next to the original; the original stays as it is")
        self.save_button.clicked.connect(self.save)
        hist = QHBoxLayout()
        hist.addWidget(self.undo_button)
        hist.addWidget(self.save_button)

        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Sprite tool message")
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        controls = QVBoxLayout()
        for w in (bg_box, px_box, tile_box):
            controls.addWidget(w)
        controls.addWidget(self.steps_label)
        controls.addLayout(hist)
        controls.addStretch(1)
        side = QWidget()
        side.setLayout(controls)
        side.setMaximumWidth(320)

        centre = QVBoxLayout()
        centre.addLayout(previews, 1)
        centre.addWidget(self.message)
        root = QHBoxLayout(self)
        root.addWidget(self.images)
        root.addLayout(centre, 1)
        root.addWidget(side)

    def _fill_palettes(self) -> None:
        self.palette.clear()
        for n in AUTO_COLOURS:
            self.palette.addItem(f"Auto: {n} colours", n)
        for name in palettes.BUILTIN_NAMES:
            self.palette.addItem(name, palettes.builtin_palette(name))
        for pal in self._custom_palettes:
            self.palette.addItem(f"{pal.name} ({len(pal)})", pal)
        self.palette.addItem("Import palette file…", "import")
        self.palette.setCurrentIndex(1)

    # -- state ----------------------------------------------------------------------
    @property
    def pipeline(self) -> SpritePipeline | None:
        return self._pipelines.get(self._path) if self._path else None

    def grid_value(self) -> int:
        g = self.grid.currentData()
        return int(g) if g else self.custom_grid.value()

    def selected_palette(self) -> Palette | int:
        data = self.palette.currentData()
        return data if isinstance(data, (Palette, int)) else 16

    def pixel_step(self) -> PixelArt:
        pal = self.selected_palette()
        return PixelArt(grid=self.grid_value(), method=self.method.currentData(),
                        palette=pal if isinstance(pal, Palette) else None,
                        colours=pal if isinstance(pal, int) else 16, dither=self.dither.currentData(),
                        outline=(0, 0, 0) if self.outline.isChecked() else None, alpha_snap=self.alpha_snap.isChecked())

    def recipe(self) -> tuple[Step, ...]:
        """The current image's steps, to repeat on every frame of a sheet."""
        pipe = self.pipeline
        return pipe.steps if pipe else ()

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._set_enabled()
        self.busy_changed.emit(busy)

    def _set_enabled(self) -> None:
        ready = self.pipeline is not None and not self._busy
        for w in (self.remove_bg, self.pixel_button, self.tile_button, self.save_button, self.palette, self.images):
            w.setEnabled(ready or (w is self.images and not self._busy))
        self.undo_button.setEnabled(ready and bool(self.pipeline and self.pipeline.steps))

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c62828;" if error else "")
        self.message.setText(text)

    # -- images ---------------------------------------------------------------------
    def set_paths(self, paths: list[Path]) -> None:
        self.images.clear()
        for p in paths:
            item = QListWidgetItem(p.name)
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setToolTip(str(p))
            self.images.addItem(item)
        self.images.setVisible(len(paths) > 1)
        if paths:
            self.images.setCurrentRow(0)

    def _on_images_current(self, item: QListWidgetItem | None, _prev=None) -> None:
        if item is not None:
            self._tasks.spawn(self.open_image(item.data(Qt.ItemDataRole.UserRole)))

    async def open_image(self, path: Path) -> None:
        self._path = path
        pipe = self._pipelines.get(path)
        self._set_busy(True)
        try:
            if pipe is None:
                pipe = await asyncio.to_thread(SpritePipeline.open, path)
                self._pipelines[path] = pipe
            out = await asyncio.to_thread(self._outcome, pipe, True)
            self._show(out)
            self.show_message("")
        except StudioError as exc:
            self.show_message(exc.user_message, error=True)
        finally:
            self._set_busy(False)

    # -- operations -----------------------------------------------------------------
    def _outcome(self, pipe: SpritePipeline, with_before: bool) -> StepOutcome:
        """Worker thread: previews, seam check and the drag copy of the current result."""
        img = pipe.current
        stem = pipe.source.stem if pipe.source else "sprite"
        name = f"{stem}_sprite.png" if pipe.steps else f"{stem}.png"
        drag = write_png(img, drag_folder(self._drag_base) / name)
        return StepOutcome(render(pipe.original) if with_before else None, render(img),
                           tiles.seam_report(img).seamless(), tuple(s.label for s in pipe.steps), drag)

    def _show(self, out: StepOutcome) -> None:
        if out.before is not None:
            self.before.set_image(out.before.qimage())
            self.before.set_caption(f"Before — {out.before.true_size[0]}×{out.before.true_size[1]}")
        self.after.set_image(out.after.qimage())
        self.after.set_caption(f"After — {out.after.true_size[0]}×{out.after.true_size[1]} — drag me out")
        self.after.set_files([out.drag_file])
        self.steps_label.setText("Steps: " + " → ".join(out.steps) if out.steps else "No steps yet")
        self.seam_label.setText("Edges match: tiles seamlessly" if out.seamless else "Edges don't match: a seam shows when tiled")
        self._set_enabled()

    def apply_step(self, step: Step) -> asyncio.Task | None:
        pipe = self.pipeline
        if pipe is None or self._busy:
            return None
        return self._tasks.spawn(self._apply(pipe, step))

    async def _apply(self, pipe: SpritePipeline, step: Step) -> None:
        self._set_busy(True)
        self.show_message(f"{step.label}…")
        try:
            def work():
                pipe.apply(step)
                return self._outcome(pipe, False)

            out = await asyncio.to_thread(work)
            self._show(out)
            self.show_message(f"{step.label}: done.")
        except StudioError as exc:
            self.show_message(exc.user_message, error=True)
        finally:
            self._set_busy(False)

    def undo(self) -> asyncio.Task | None:
        pipe = self.pipeline
        if pipe is None or self._busy or not pipe.steps:
            return None

        async def run():
            self._set_busy(True)
            try:
                step = pipe.undo()
                out = await asyncio.to_thread(self._outcome, pipe, False)
                self._show(out)
                self.show_message(f"Undid {step.label}." if step else "")
            finally:
                self._set_busy(False)

        return self._tasks.spawn(run())

    def save(self) -> asyncio.Task | None:
        pipe = self.pipeline
        if pipe is None or self._busy:
            return None

        async def run():
            self._set_busy(True)
            try:
                path = await asyncio.to_thread(pipeline.save_result, pipe)
                self.show_message(f"Saved {path.name} beside the original.")
                self.result_saved.emit(path)
                if self._on_saved is not None:
                    result = self._on_saved(path)
                    if asyncio.iscoroutine(result):
                        await result
            except StudioError as exc:
                self.show_message(exc.user_message, error=True)
            finally:
                self._set_busy(False)

        return self._tasks.spawn(run())

    # -- palettes -------------------------------------------------------------------
    def _on_palette_activated(self, _index: int) -> None:
        if self.palette.currentData() != "import":
            return
        self.palette.setCurrentIndex(1)
        dlg = QFileDialog(self, "Import a palette", "", "Palettes (*.gpl *.pal *.hex *.txt *.png *.gif);;All files (*)")
        dlg.setFileMode(QFileDialog.FileMode.ExistingFile)
        dlg.fileSelected.connect(lambda f: self.import_palette(Path(f)))
        dlg.open()  # not exec(): a nested modal loop would stall the asyncio tasks

    def import_palette(self, path: Path) -> asyncio.Task:
        async def run():
            try:
                pal = await asyncio.to_thread(palettes.load_palette, path)
            except StudioError as exc:
                self.show_message(exc.user_message, error=True)
                return
            self._custom_palettes.append(pal)
            self._fill_palettes()
            self.palette.setCurrentIndex(self.palette.count() - 2)
            self.show_message(f"Palette {pal.name} with {len(pal)} colours added.")

        return self._tasks.spawn(run())


def sheet_image(path: Path, recipe: tuple[Step, ...]) -> Image.Image:
    """Worker thread: one sheet frame = the file with the sprite recipe replayed on it."""
    pipe = SpritePipeline.open(path)
    for step in recipe:
        pipe.apply(step)
    return pipe.current


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")
