"""The Sheet tab: the selected images (with the sprite recipe replayed on each) packed
into one sheet, checked for consistency, exported for an engine or dragged out."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio_core.errors import StudioError
from studio_core.plural import counted
from studio_core.sprites import checks, exporters, frames, sheet
from studio_core.sprites.checks import SheetWarning
from studio_core.sprites.drift import DRIFT_THRESHOLD, DriftReport, measure_drift
from studio_core.sprites.errors import EmptySheet
from studio_core.sprites.palettes import Palette
from studio_core.sprites.pipeline import Step
from studio_core.storage.images import safe_component
from studio_gui.sprites.preview import FileDragSource
from studio_gui.sprites.rendered import Rendered, drag_folder, render
from studio_gui.sprites.sprite_tab import sheet_image
from studio_gui.tasks import TaskOwner


LABEL_ROLE = Qt.ItemDataRole.UserRole + 1
ANIMATION_ROLE = Qt.ItemDataRole.UserRole + 2


@dataclass(frozen=True)
class SheetOptions:
    name: str
    frame_ms: int
    layout: str
    columns: int
    padding: int
    extrude: int
    align: bool
    tiles: bool
    use_recipe: bool
    formats: tuple[str, ...]
    drift_limit: float = DRIFT_THRESHOLD


@dataclass(frozen=True)
class FrameSource:
    """One frame of the sheet: its file, and optionally its name and animation as a frame
    set named them (``walk_down_00`` in ``walk_down``). Without them both come from the
    name (``walk_left_03.png`` → ``walk_left``) or, failing that, the sheet's name."""

    path: Path
    label: str | None = None
    animation: str | None = None


@dataclass(frozen=True)
class SheetOutcome:
    preview: Rendered
    warnings: tuple[SheetWarning, ...]
    files: tuple[Path, ...]
    frames: int
    name: str = ""  # the name written: the one asked for, or ``<name>-2``… when the folder had it
    drift: DriftReport | None = None  # None for tiles, which are not one character


def frame_plan(sources: list[FrameSource], sheet_name: str) -> tuple[list[FrameSource], list[str], list[str]]:
    """Pure: the frames in sheet order (each animation's frames together), with their
    export names and animations."""
    derived = sheet.animations_from_names([s.label or s.path.stem for s in sources], sheet_name)
    anims = [s.animation or d for s, d in zip(sources, derived)]
    order = sheet.group_by_animation(list(range(len(sources))), anims)
    ordered = [sources[i] for i in order]
    anims = [anims[i] for i in order]
    return ordered, sheet.frame_names([s.label for s in ordered], anims), anims


def build_sheet(frames_in: list[FrameSource] | list[Path], recipe: tuple[Step, ...], opts: SheetOptions,
                palette: Palette | None, folder: Path) -> SheetOutcome:
    """Worker thread: open, process, align, pack, check, write the sheet and its metadata."""
    if not frames_in:
        raise EmptySheet("no images selected")
    sources = [f if isinstance(f, FrameSource) else FrameSource(Path(f)) for f in frames_in]
    sources, names, anims = frame_plan(sources, opts.name)
    images = [sheet_image(s.path, recipe if opts.use_recipe else ()) for s in sources]
    if opts.align and not opts.tiles:
        images = list(frames.align_frames(images).images)
    # Checked after aligning: warnings describe the sheet as it will be exported.
    report = None if opts.tiles else measure_drift(list(zip(names, images)), groups=anims, threshold=opts.drift_limit)
    warnings = checks.check_frames(list(zip(names, images)), palette=palette, tiles=opts.tiles, drift=report)
    sheet_frames = [sheet.SheetFrame(n, im, a, opts.frame_ms) for n, im, a in zip(names, images, anims)]
    packed = sheet.pack(sheet_frames, layout=opts.layout, columns=opts.columns or None,
                        padding=opts.padding, extrude=opts.extrude)  # type: ignore[arg-type]
    result = exporters.export_sheet(packed, folder, opts.name, opts.formats)
    return SheetOutcome(render(packed.image), warnings, result.files, len(sheet_frames), result.name, report)


class SheetTab(QWidget):
    def __init__(self, *, drag_base: Path, tasks: TaskOwner,
                 recipe: Callable[[], tuple[Step, ...]], palette: Callable[[], Palette | None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._drag_base = drag_base
        self._tasks = tasks
        self._recipe = recipe
        self._palette = palette
        self._paths: list[Path] = []
        self._busy = False
        self._auto_name = ""
        self._build()

    def _build(self) -> None:
        self.frames_list = QListWidget()
        self.frames_list.setMaximumWidth(200)
        self.frames_list.setAccessibleName("Frames")
        self.frames_list.setDragDropMode(QListWidget.DragDropMode.InternalMove)  # reorder frames
        self.frames_list.setToolTip("Frames in playing order; drag to reorder. "
                                    "Each animation's frames sit together on the sheet.")

        self.preview = FileDragSource("Sheet — drag out with its metadata")
        self.warnings = QListWidget()
        self.warnings.setAccessibleName("Sheet warnings")
        self.warnings.setMaximumHeight(130)
        self.drift_line = QLabel("")
        self.drift_line.setObjectName("SheetDrift")
        self.drift_line.setAccessibleName("Character drift")
        self.drift_line.setWordWrap(True)
        self.drift_line.setToolTip("How far each frame's colours and outline stray from the other frames of its "
                                   "animation: 0 is the same character, 1 nothing in common. Frames over the limit "
                                   "are listed in the warnings.")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.name = QLineEdit(sheet.DEFAULT_SHEET_NAME)
        self.name.setAccessibleName("Animation name")
        self.name.setToolTip("The sheet's file name, and the animation of frames whose names do not give one "
                             "(walk_left_00, walk_left_01… play as walk_left)")
        self.frame_ms = QSpinBox()
        self.frame_ms.setRange(10, 5000)
        self.frame_ms.setValue(100)
        self.frame_ms.setSuffix(" ms")
        self.layout_combo = QComboBox()
        self.layout_combo.addItem("Grid", "grid")
        self.layout_combo.addItem("Packed", "packed")
        self.columns = QSpinBox()
        self.columns.setRange(0, 64)
        self.columns.setSpecialValueText("auto")
        self.padding = QSpinBox()
        self.padding.setRange(0, 32)
        self.padding.setValue(1)
        self.extrude = QSpinBox()
        self.extrude.setRange(0, 8)
        self.use_recipe = QCheckBox("Repeat the sprite steps on each frame")
        self.use_recipe.setChecked(True)
        self.use_recipe.setToolTip("Replays the Sprite tab's steps (background, pixel art…) on every frame")
        self.align = QCheckBox("Align frames (bottom-centre pivot)")
        self.align.setChecked(True)
        self.tiles = QCheckBox("These are tiles (check seams)")
        self.drift_limit = QDoubleSpinBox()
        self.drift_limit.setRange(0.05, 1.0)
        self.drift_limit.setSingleStep(0.05)
        self.drift_limit.setDecimals(2)
        self.drift_limit.setValue(DRIFT_THRESHOLD)
        self.drift_limit.setAccessibleName("Character drift limit")
        self.drift_limit.setToolTip("Frames whose character drift is over this are named in the warnings; "
                                    "lower is stricter")
        opts = QGroupBox("Sheet")
        form = QFormLayout(opts)
        form.addRow("Name", self.name)
        form.addRow("Frame time", self.frame_ms)
        form.addRow("Layout", self.layout_combo)
        form.addRow("Columns", self.columns)
        form.addRow("Padding", self.padding)
        form.addRow("Extrude edges", self.extrude)
        form.addRow(self.use_recipe)
        form.addRow(self.align)
        form.addRow(self.tiles)
        form.addRow("Drift limit", self.drift_limit)

        fmt_box = QGroupBox("Metadata for")
        grid = QGridLayout(fmt_box)
        self.format_checks: dict[str, QCheckBox] = {}
        for i, (key, label) in enumerate(exporters.FORMATS.items()):
            cb = QCheckBox(label)
            cb.setChecked(key in ("aseprite-hash", "godot"))
            self.format_checks[key] = cb
            grid.addWidget(cb, i, 0)

        self.build_button = QPushButton("Build sheet")
        self.build_button.setToolTip("Pack the frames and check them; then drag the sheet out or export it")
        self.build_button.clicked.connect(lambda: self.build())
        self.export_button = QPushButton("Export to folder…")
        self.export_button.clicked.connect(self._choose_folder)
        buttons = QHBoxLayout()
        buttons.addWidget(self.build_button)
        buttons.addWidget(self.export_button)

        side = QVBoxLayout()
        side.addWidget(opts)
        side.addWidget(fmt_box)
        side.addLayout(buttons)
        side.addStretch(1)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setMaximumWidth(320)

        centre = QVBoxLayout()
        centre.addWidget(self.preview, 1)
        centre.addWidget(QLabel("Warnings"))
        centre.addWidget(self.warnings)
        centre.addWidget(self.drift_line)
        centre.addWidget(self.message)
        root = QHBoxLayout(self)
        root.addWidget(self.frames_list)
        root.addLayout(centre, 1)
        root.addWidget(side_w)

    # -- state ----------------------------------------------------------------------
    def set_paths(self, paths: list[Path], *, names: list[str] | None = None,
                  animations: list[str | None] | None = None) -> None:
        """The frames, in playing order. ``names`` and ``animations`` (one per path, from a
        frame set) name each frame and the animation it plays in; without them a numbered
        file name (``walk_left_03.png``) gives the animation, else the sheet's name does."""
        self._paths = list(paths)
        self.frames_list.clear()
        for i, p in enumerate(paths):
            label = str(names[i]) if names and i < len(names) and names[i] else None
            anim = str(animations[i]) if animations and i < len(animations) and animations[i] else None
            item = QListWidgetItem(label or p.name)
            item.setData(Qt.ItemDataRole.UserRole, p)
            item.setData(LABEL_ROLE, label)
            item.setData(ANIMATION_ROLE, anim)
            tip = p.name if label else ""
            if anim:
                tip = f"{tip}\nAnimation: {anim}".strip()
            item.setToolTip(tip)
            self.frames_list.addItem(item)
        self.build_button.setEnabled(bool(paths))
        self.export_button.setEnabled(bool(paths))
        # A name someone typed (or a frame set chose) stays; the one made up last time follows
        # the new frames.
        if self.name.text() in (self._auto_name, sheet.DEFAULT_SHEET_NAME, ""):
            self._auto_name = sheet.sheet_name_for(
                [(str(names[i]) if names and i < len(names) and names[i] else p.stem) for i, p in enumerate(paths)],
                [a for a in animations or ()] if animations and len(animations) == len(paths) else ())
            self.name.setText(self._auto_name)

    def ordered_paths(self) -> list[Path]:
        return [self.frames_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.frames_list.count())]

    def frame_sources(self) -> list[FrameSource]:
        """The frames in list order with their names and animations (a drag keeps them)."""
        out = []
        for i in range(self.frames_list.count()):
            item = self.frames_list.item(i)
            out.append(FrameSource(item.data(Qt.ItemDataRole.UserRole), item.data(LABEL_ROLE) or None,
                                   item.data(ANIMATION_ROLE) or None))
        return out

    def options(self, formats: tuple[str, ...] | None = None) -> SheetOptions:
        return SheetOptions(
            name=safe_component(self.name.text(), fallback="sheet"), frame_ms=self.frame_ms.value(),
            layout=self.layout_combo.currentData(), columns=self.columns.value(), padding=self.padding.value(),
            extrude=self.extrude.value(), align=self.align.isChecked(), tiles=self.tiles.isChecked(),
            use_recipe=self.use_recipe.isChecked(), drift_limit=round(self.drift_limit.value(), 2),
            formats=formats if formats is not None else tuple(k for k, cb in self.format_checks.items() if cb.isChecked()))

    def show_message(self, text: str, *, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c62828;" if error else "")
        self.message.setText(text)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.build_button.setEnabled(not busy)
        self.export_button.setEnabled(not busy)

    # -- actions --------------------------------------------------------------------
    def build(self, folder: Path | None = None) -> asyncio.Task | None:
        if self._busy:
            return None
        return self._tasks.spawn(self._build_sheet(folder))

    async def _build_sheet(self, folder: Path | None) -> None:
        self._set_busy(True)
        to_folder = folder is not None
        self.show_message("Exporting…" if to_folder else "Building the sheet…")
        try:
            target = folder or await asyncio.to_thread(drag_folder, self._drag_base)
            opts = self.options()
            out = await asyncio.to_thread(build_sheet, self.frame_sources(), self._recipe(), opts,
                                          self._palette(), target)
        except StudioError as exc:
            self.show_message(exc.user_message, error=True)
            return
        finally:
            self._set_busy(False)
        self.preview.set_image(out.preview.qimage())
        self.preview.set_caption(f"Sheet — {out.preview.true_size[0]}×{out.preview.true_size[1]}, "
                                 f"{counted(out.frames, 'frame')} — drag out with its metadata")
        if not to_folder:
            self.preview.set_files(list(out.files))
        self.warnings.clear()
        for w in out.warnings:
            item = QListWidgetItem(f"⚠ {w.message}")
            item.setData(Qt.ItemDataRole.UserRole, w)
            self.warnings.addItem(item)
        if not out.warnings:
            self.warnings.addItem("No problems found: sizes, pivots" + (", seams" if self.tiles.isChecked() else "")
                                  + (", palette and character are consistent." if out.drift and out.drift.frames
                                     else " and palette are consistent."))
        self.drift_line.setText(out.drift.summary() if out.drift is not None and out.frames > 1 else "")
        self.drift_line.setVisible(bool(self.drift_line.text()))
        names = ", ".join(f.name for f in out.files)
        if to_folder and out.name and out.name != opts.name:
            self.show_message(f"Exported to {folder} as {out.name} ({opts.name} was already there and is"
                              f" left as it was): {names}")
        else:
            self.show_message(f"Exported to {folder}: {names}" if to_folder else f"Ready to drag: {names}")

    def _choose_folder(self) -> None:
        dlg = QFileDialog(self, "Export the sheet to")
        dlg.setFileMode(QFileDialog.FileMode.Directory)
        dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
        dlg.fileSelected.connect(lambda f: self.build(Path(f)))
        dlg.open()
