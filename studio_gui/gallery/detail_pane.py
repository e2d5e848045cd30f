"""DetailPane: one image on a checkerboard with everything known about how it was made."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

import shiboken6
from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QDialog,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from studio_core.storage.cleanup import human_size
from studio_core.storage.records import ImageRecord, service_label
from studio_core.storage.index import to_thread
from studio_gui.gallery.delegate import checker_tile
from studio_gui.tasks import TaskOwner


def load_image(path: Path) -> QImage:
    """Worker thread: decode the full image (QImage is allowed off the GUI thread)."""
    return QImage(str(path))


class CheckerImage(QWidget):
    """Paints an image scaled to fit over a checkerboard, so transparency shows.

    Small sprites are scaled by whole factors without smoothing to keep pixels crisp.
    """

    def __init__(self, parent=None, *, min_size: int = 200):
        super().__init__(parent)
        self._pixmap: QPixmap | None = None
        self._message = ""
        self.setMinimumSize(min_size, min_size)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_pixmap(self, pm: QPixmap | None, message: str = "") -> None:
        self._pixmap, self._message = pm, message
        self.update()

    def pixmap(self) -> QPixmap | None:
        return self._pixmap

    def sizeHint(self) -> QSize:
        return QSize(320, 320)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        pm = self._pixmap
        if pm is None or pm.isNull():
            p.setPen(self.palette().color(self.foregroundRole()))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self._message)
            return
        area = self.rect().adjusted(4, 4, -4, -4)
        w, h = pm.width() / pm.devicePixelRatio(), pm.height() / pm.devicePixelRatio()
        scale = min(area.width() / w, area.height() / h)
        crisp = scale >= 2
        if crisp:
            scale = int(scale)
        size = QSize(max(1, int(w * scale)), max(1, int(h * scale)))
        target = QRect(0, 0, size.width(), size.height())
        target.moveCenter(area.center())
        p.drawTiledPixmap(target, checker_tile(10))
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, not crisp)
        p.drawPixmap(target, pm)


class PreviewDialog(QDialog):
    """The larger preview behind Space; Space or Esc closes it."""

    def __init__(self, pixmap: QPixmap, title: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.resize(760, 760)
        lay = QVBoxLayout(self)
        self.image = CheckerImage(self, min_size=400)
        self.image.set_pixmap(pixmap)
        lay.addWidget(self.image)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space:
            self.accept()
            return
        super().keyPressEvent(event)


def _fmt_created(rec: ImageRecord) -> str:
    if not rec.created_ts:
        return "unknown"
    return datetime.fromtimestamp(rec.created_ts).strftime("%Y-%m-%d %H:%M")


class DetailPane(QWidget):
    reuse_requested = Signal(object)
    copy_prompt_requested = Signal(object)
    export_requested = Signal(object)
    show_in_folder_requested = Signal(object)
    open_requested = Signal(object)
    delete_requested = Signal(object)
    favourite_requested = Signal(object)
    sprite_tools_requested = Signal(object)
    edit_requested = Signal(object)
    use_reference_requested = Signal(object)

    FIELDS = (("Prompt", "prompt"), ("Negative", "negative"), ("Service", "service"), ("Provider", "provider"),
              ("Model", "model"), ("Seed", "seed"), ("Size", "size"), ("Steps", "steps"), ("CFG", "cfg"),
              ("Sampler", "sampler"), ("Quality", "quality"), ("Time", "duration"), ("Cost", "cost"),
              ("Created", "created"), ("File", "file"), ("Tags", "tags"))

    def __init__(self, *, tasks: TaskOwner, images_root: Path, service_names: dict[str, str] | None = None,
                 parent=None):
        super().__init__(parent)
        self.tasks = tasks
        self.images_root = images_root
        self.service_names = dict(service_names or {})
        self.record: ImageRecord | None = None
        self.full_image: QImage | None = None
        self._load_task: asyncio.Task | None = None
        self.setMinimumWidth(300)

        outer = QVBoxLayout(self)
        outer.setContentsMargins(6, 0, 0, 0)
        self.image = CheckerImage(self)
        self.image.setAccessibleName("Selected image")
        outer.addWidget(self.image, 5)

        buttons = QGridLayout()
        self.reuse_button = self._button("Reuse settings", "Fill the Generate tab with this image's settings",
                                         self.reuse_requested)
        self.copy_button = self._button("Copy prompt", "Copy the prompt to the clipboard", self.copy_prompt_requested)
        self.fav_button = self._button("☆ Favourite", "Keep this image: clean-up never removes favourites (F)",
                                       self.favourite_requested)
        self.export_button = self._button("Export…", "Save a copy as PNG or WebP, with or without settings",
                                          self.export_requested)
        self.folder_button = self._button("Show in folder", "Show the file in your file manager",
                                          self.show_in_folder_requested)
        self.open_button = self._button("Open", "Open in your image viewer (Enter)", self.open_requested)
        self.sprite_button = self._button("Sprite tools…", "Remove the background, make pixel art, or pack the"
                                          " selected images into a sprite sheet", self.sprite_tools_requested)
        self.delete_button = self._button("Delete", "Move to the trash (Delete)", self.delete_requested)
        from studio_gui.gallery.actions import EDIT_TIP, REFERENCE_TIP

        self.edit_button = self._button("Edit this…", EDIT_TIP, self.edit_requested)
        self.reference_button = self._button("Use as reference", REFERENCE_TIP, self.use_reference_requested)
        for i, b in enumerate((self.reuse_button, self.copy_button, self.edit_button, self.reference_button,
                               self.fav_button, self.export_button, self.folder_button, self.open_button,
                               self.sprite_button, self.delete_button)):
            buttons.addWidget(b, i // 2, i % 2)
        outer.addLayout(buttons)

        form_host = QWidget()
        self.form = QFormLayout(form_host)
        self.form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.values: dict[str, QLabel] = {}
        for label, key in self.FIELDS:
            v = QLabel()
            v.setWordWrap(True)
            v.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
            v.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            v.setAccessibleName(label)
            self.values[key] = v
            self.form.addRow(label, v)
        self.fields_area = scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        # Long prompts wrap instead of widening the pane.
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(form_host)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        outer.addWidget(scroll, 4)
        self.show_record(None)

    def _button(self, text: str, tip: str, signal) -> QPushButton:
        b = QPushButton(text)
        b.setToolTip(tip)
        b.setAccessibleName(text.rstrip("…").lstrip("☆★ "))
        b.clicked.connect(lambda: self.record is not None and signal.emit(self.record))
        return b

    def show_record(self, rec: ImageRecord | None) -> None:
        same_image = rec is not None and self.record is not None and rec.id == self.record.id \
            and rec.mtime_ns == self.record.mtime_ns
        self.record = rec
        for b in (self.reuse_button, self.copy_button, self.fav_button, self.export_button, self.folder_button,
                  self.open_button, self.sprite_button, self.delete_button, self.edit_button, self.reference_button):
            b.setEnabled(rec is not None)
        if rec is None:
            self.full_image = None
            self.image.set_pixmap(None, "Select an image to see how it was made.")
            # Labels with nothing after them ("Seed", "Cost"…) read as missing data.
            for v in self.values.values():
                v.setText("")
                self.form.setRowVisible(v, False)
            self.fields_area.setVisible(False)
            return
        self.fields_area.setVisible(True)
        self.fav_button.setText("★ Favourite" if rec.favourite else "☆ Favourite")
        self.reuse_button.setEnabled(bool(rec.prompt))
        self.copy_button.setEnabled(bool(rec.prompt))
        vals = {
            "prompt": rec.prompt or "(not recorded in the file)",
            "negative": rec.negative, "service": service_label(rec.service, self.service_names),
            "provider": rec.provider or rec.server,
            "model": rec.model, "seed": "" if rec.seed is None else str(rec.seed),
            "size": f"{rec.width} × {rec.height}" if rec.width else "",
            "steps": str(rec.steps) if rec.steps else "", "cfg": f"{rec.cfg:g}" if rec.steps else "",
            "sampler": " / ".join(x for x in (rec.sampler, rec.scheduler) if x), "quality": rec.quality,
            "duration": f"{rec.duration_s:.1f} s" if rec.duration_s is not None else "",
            "cost": "" if rec.cost_usd is None else f"${rec.cost_usd:.4f} (estimate)" + (
                ", recorded by whoever made it; not counted as your spend" if rec.imported else ""),
            "created": _fmt_created(rec), "file": f"{rec.path} ({human_size(rec.file_size)})",
            "tags": ", ".join(rec.tags),
        }
        for key, v in self.values.items():
            v.setText(vals.get(key, ""))
            self.form.setRowVisible(v, bool(vals.get(key)))
        if not same_image:
            self.full_image = None
            self.image.set_pixmap(None, "Loading…")
            if self._load_task is not None:
                self._load_task.cancel()
            self._load_task = self.tasks.spawn(self._load(rec), name="detail-image")

    async def _load(self, rec: ImageRecord) -> None:
        img = await to_thread(load_image, self.images_root / rec.path)
        # The decode ran on a worker: the Saved tab may have closed (and deleted this pane)
        # before it ended, and a task cancelled after its thread finished still resumes here.
        if not shiboken6.isValid(self.image):
            return
        if self.record is None or self.record.id != rec.id:
            return
        if img.isNull():
            self.image.set_pixmap(None, f"{rec.name} can no longer be read. It may have been moved, deleted or"
                                  " damaged outside the studio; use Rescan to update the gallery.")
            return
        self.full_image = img
        self.image.set_pixmap(QPixmap.fromImage(img))
