"""What the gallery does with an image: open, show in folder, clipboard, export, trash,
Sprite Tools, and the right-click menu both grids (Saved tab, this session) share.

Everything touching the disk runs in a worker thread; only Qt objects are made here.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QDesktopServices, QImage
from PySide6.QtWidgets import QApplication, QFileDialog, QInputDialog, QMenu, QWidget

from studio_core.storage.index import to_thread
from studio_core.errors import StorageError
from studio_core.storage.cleanup import TrashResult, trash_files
from studio_core.storage.index import ImageIndex
from studio_core.storage.records import ImageRecord

if TYPE_CHECKING:
    from studio_core.storage.export import BatchExportResult

EXPORT_FILTERS = (
    ("PNG with generation settings (*.png)", "png", True),
    ("PNG without settings (*.png)", "png", False),
    ("WebP, smaller, with settings (*.webp)", "webp", True),
    ("WebP, smaller, without settings (*.webp)", "webp", False),
)


def _missing(path: Path) -> StorageError:
    return StorageError(f"{path} missing", user_message=f"{path.name} is no longer in the images folder."
                        " It was moved or deleted outside the studio; use Rescan to update the gallery.")


async def open_in_viewer(path: Path) -> None:
    # The existence check runs in a worker: on a network drive or a waking disk a stat on
    # the GUI thread froze the window for the whole click.
    if not await to_thread(path.exists):
        raise _missing(path)
    if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))):
        raise StorageError(f"openUrl failed for {path}", user_message="No image viewer is set up to open PNG files.")


async def show_in_folder(path: Path) -> None:
    if not await to_thread(path.exists):
        raise _missing(path)
    try:
        if sys.platform == "win32":
            subprocess.Popen(["explorer", "/select,", str(path)])
            return
        if sys.platform == "darwin":
            subprocess.Popen(["open", "-R", str(path)])
            return
    except OSError:
        pass
    # Linux desktops have no portable "select this file"; opening the folder is the common ground.
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


def load_images(paths: Sequence[Path]) -> list[QImage]:
    """Worker thread."""
    return [QImage(str(p)) for p in paths]


async def copy_to_clipboard(paths: Sequence[Path]) -> None:
    """Put the image (the first one's pixels) and every file on the clipboard."""
    images = await to_thread(load_images, list(paths[:1]))
    if not images or images[0].isNull():
        raise _missing(Path(paths[0])) if paths and not Path(paths[0]).exists() else StorageError(
            "unreadable", user_message="That image could not be read.")
    mime = QMimeData()
    mime.setImageData(images[0])
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    QApplication.clipboard().setMimeData(mime)


async def export(src: Path, dest: Path, *, fmt: str, with_metadata: bool) -> Path:
    if not src.exists():
        raise _missing(src)
    # Imported here: export pulls in Pillow, which the first screen does not need.
    from studio_core.storage.export import export_image

    return await to_thread(functools.partial(export_image, src, dest, with_metadata=with_metadata, fmt=fmt))


def ask_export_format(parent: QWidget, on_chosen: Callable[[str, bool], Any]) -> QInputDialog:
    """Ask for one of :data:`EXPORT_FILTERS` (non-blocking); ``on_chosen(fmt, with_metadata)``."""
    labels = [label.rsplit(" (", 1)[0] for label, _f, _m in EXPORT_FILTERS]
    dlg = QInputDialog(parent)
    dlg.setWindowTitle("Export images")
    dlg.setLabelText("Format:")
    dlg.setComboBoxItems(labels)
    dlg.setComboBoxEditable(False)

    def chosen(text: str) -> None:
        i = labels.index(text) if text in labels else 0
        on_chosen(EXPORT_FILTERS[i][1], EXPORT_FILTERS[i][2])

    dlg.textValueSelected.connect(chosen)
    dlg.open()
    return dlg


def ask_folder(parent: QWidget, title: str, on_chosen: Callable[[Path], Any]) -> QFileDialog:
    """A folder chooser opened non-blocking; ``on_chosen(folder)`` when the user picks one."""
    dlg = QFileDialog(parent, title, str(Path.home()))
    dlg.setFileMode(QFileDialog.FileMode.Directory)
    dlg.setOption(QFileDialog.Option.ShowDirsOnly, True)
    dlg.fileSelected.connect(lambda path: on_chosen(Path(path)))
    dlg.open()
    return dlg


async def export_many(srcs: Sequence[Path], folder: Path, *, fmt: str, with_metadata: bool,
                      progress: Callable[[int, int], Any] | None = None) -> BatchExportResult:
    """Export every file into ``folder`` in a worker thread; ``progress(done, total)`` on the loop."""
    from studio_core.storage.export import export_batch

    loop = asyncio.get_running_loop()

    def report(done: int, total: int) -> None:
        if progress is not None:
            loop.call_soon_threadsafe(progress, done, total)

    return await to_thread(functools.partial(export_batch, [Path(p) for p in srcs], Path(folder), fmt=fmt,
                                             with_metadata=with_metadata, progress=report))


async def trash(index: ImageIndex, records: Sequence[ImageRecord]) -> TrashResult:
    """Send the files to the system trash, then drop their rows (the view updates in place)."""
    result = await to_thread(trash_files, index.images, list(records))
    if result.trashed:
        await index.remove(result.trashed)
    return result


def open_sprite_tools(parent: QWidget, core: Any, paths: Sequence[Path]) -> Any:
    """The Sprite Tools over ``paths``: one image opens the Sprite tab, several the Sheet tab.

    The sprites package loads on first use (it brings numpy), so start-up stays light.
    """
    from studio_gui import sprites

    return sprites.open_sprite_tools(parent.window(), core, [Path(p) for p in paths])


RecordFn = Callable[[ImageRecord], Any]
RecordsFn = Callable[[list[ImageRecord]], Any]


@dataclasses.dataclass
class MenuHandlers:
    """What a grid's right-click menu offers; an entry whose handler is None is left out.

    Single-image entries act on the image under the pointer; the others on the selection.
    """

    open: RecordFn | None = None
    show_in_folder: RecordFn | None = None
    reuse: RecordFn | None = None
    edit: RecordFn | None = None  # the image as the Generate tab's init image
    use_reference: RecordFn | None = None  # the image as a reference (or the animation's character)
    copy_prompt: RecordFn | None = None
    copy_image: RecordsFn | None = None
    export: RecordFn | None = None
    export_many: RecordsFn | None = None
    sprite_tools: RecordsFn | None = None
    favourite: RecordsFn | None = None
    delete: RecordsFn | None = None


EDIT_TIP = "Redraw this image in the Generate tab (init image; paint a mask to change only part of it)"
REFERENCE_TIP = ("Keep this character in new pictures: a reference in the Generate tab "
                 "(the animation's character when Frames is on Animation)")


def send_to_generate(widget: QWidget, path: Path, role: str) -> bool:
    """Switch to the Generate tab with ``path`` as its init image ("init") or a reference
    ("reference"; the animation's character while the Frames panel makes one). False when
    this window has no Generate tab that takes images."""
    win = widget.window()
    gen = getattr(win, "generate_tab", None)
    hook = getattr(gen, "image_inputs", None)
    if gen is None or hook is None:
        return False
    tabs = getattr(win, "tabs", None)
    if tabs is not None:
        tabs.setCurrentWidget(gen)
    gen.tasks.spawn(hook.send(Path(path), role), name="send image to Generate")
    return True


SPRITE_TOOLS_TIP = ("Remove the background, make pixel art, or pack a sprite sheet"
                    " (one image: Sprite tab; several: Sheet tab)")


def image_menu(parent: QWidget, records: Sequence[ImageRecord], handlers: MenuHandlers,
               current: ImageRecord | None = None) -> QMenu:
    """The right-click menu for ``records`` (the selection); ``current`` is the clicked one."""
    recs = list(records)
    one = current if current is not None and any(r.id == current.id for r in recs) else (recs[0] if recs else None)
    menu = QMenu(parent)
    menu.setToolTipsVisible(True)

    def add(text: str, fn: Callable[[], Any], *, tip: str = "", enabled: bool = True) -> None:
        act = menu.addAction(text, fn)
        act.setEnabled(enabled)
        if tip:
            act.setToolTip(tip)

    h = handlers
    if one is not None:
        if h.open:
            add("Open", lambda: h.open(one), tip="Open in your image viewer (Enter)")
        if h.show_in_folder:
            add("Show in folder", lambda: h.show_in_folder(one), tip="Show the file in your file manager")
        if h.reuse or h.copy_prompt or h.edit or h.use_reference:
            menu.addSeparator()
        if h.reuse:
            add("Reuse settings", lambda: h.reuse(one), enabled=bool(one.prompt),
                tip="Fill the Generate tab with this image's settings")
        if h.edit:
            add("Edit this…", lambda: h.edit(one), tip=EDIT_TIP)
        if h.use_reference:
            add("Use as reference", lambda: h.use_reference(one), tip=REFERENCE_TIP)
        if h.copy_prompt:
            add("Copy prompt", lambda: h.copy_prompt(one), enabled=bool(one.prompt))
    if recs and h.copy_image:
        add("Copy image" if len(recs) == 1 else f"Copy {len(recs)} images", lambda: h.copy_image(recs))
    if len(recs) > 1 and h.export_many:
        add(f"Export {len(recs)} images…", lambda: h.export_many(recs),
            tip="Save copies into a folder as PNG or WebP, with or without settings")
    elif one is not None and h.export:
        add("Export…", lambda: h.export(one), tip="Save a copy as PNG or WebP, with or without settings")
    if recs and h.sprite_tools:
        menu.addSeparator()
        add("Sprite tools…", lambda: h.sprite_tools(recs), tip=SPRITE_TOOLS_TIP)
    if recs and (h.favourite or h.delete):
        menu.addSeparator()
    if recs and h.favourite:
        add("Remove from favourites" if all(r.favourite for r in recs) else "Favourite",
            lambda: h.favourite(recs))
    if recs and h.delete:
        add("Move to trash" if len(recs) == 1 else f"Move {len(recs)} to trash", lambda: h.delete(recs))
    return menu
