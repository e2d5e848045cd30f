"""The Generate tab's "this session" grid: the gallery's model, delegate and view over the
images saved since the app started, so both grids look, update and drag out alike."""

from __future__ import annotations

import time

from PySide6.QtWidgets import QWidget

from studio_core.app_core import StudioCore
from studio_core.storage.records import ImageQuery
from studio_gui.gallery.model import GalleryModel
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.gallery.view import GalleryView
from studio_gui.tasks import TaskOwner


def session_grid(core: StudioCore, *, tasks: TaskOwner, since_ts: float | None = None, thumb: int = 96,
                 parent: QWidget | None = None) -> tuple[GalleryModel, GalleryView]:
    """A model + view showing images saved from ``since_ts`` (default: now) on, newest first.

    New images appear by themselves (the model listens to the index). Call
    ``model.set_query(model.query)`` once the loop runs to show any already saved, and
    ``model.detach(); model.loader.close()`` when the owner closes.
    """
    loader = ThumbnailLoader(core.paths.thumbnails, capacity=400, parent=parent)
    model = GalleryModel(core.index, loader, tasks=tasks, images_root=core.paths.images,
                         query=ImageQuery(since_ts=time.time() if since_ts is None else since_ts), parent=parent)
    view = GalleryView(parent, drag_root=core.paths.cache / "drag", thumb=thumb)
    view.setAccessibleName("Results of this session")
    view.setModel(model)
    return model, view
