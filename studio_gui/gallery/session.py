"""The Generate tab's "this session" grid: the gallery's model, delegate and view over the
images saved since the app started, so both grids look, update and drag out alike."""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Sequence

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QWidget

from studio_core.app_core import StudioCore
from studio_core.errors import StudioError
from studio_core.models import GenerationRequest
from studio_core.storage.records import ImageQuery, ImageRecord
from studio_gui.bridge import bridge_for
from studio_gui.gallery import actions
from studio_gui.gallery.model import GalleryModel
from studio_gui.gallery.thumbnail_loader import ThumbnailLoader
from studio_gui.gallery.view import GalleryView
from studio_gui.tasks import TaskOwner


def session_grid(core: StudioCore, *, tasks: TaskOwner, since_ts: float | None = None, thumb: int = 96,
                 parent: QWidget | None = None) -> tuple[GalleryModel, GalleryView]:
    """A model + view showing images saved from ``since_ts`` (default: now) on, newest first.

    New images appear by themselves (the model follows the core's bridge). Call
    ``model.set_query(model.query)`` once the loop runs to show any already saved, and
    ``model.detach(); model.loader.close()`` when the owner closes.
    """
    loader = ThumbnailLoader(core.paths.thumbnails, capacity=400, parent=parent)
    model = GalleryModel(core.index, loader, tasks=tasks, images_root=core.paths.images,
                         query=ImageQuery(since_ts=time.time() if since_ts is None else since_ts), parent=parent,
                         bridge=bridge_for(core))
    view = GalleryView(parent, drag_root=core.paths.cache / "drag", thumb=thumb)
    view.setAccessibleName("Results of this session")
    view.setModel(model)
    return model, view


def connect_session_actions(view: GalleryView, core: StudioCore, *, tasks: TaskOwner,
                            reuse: Callable[[GenerationRequest], Any],
                            report: Callable[[BaseException], Any],
                            send: Callable[[Any, str], Any] | None = None) -> actions.MenuHandlers:
    """Give the session grid the gallery's right-click menu (Open, Show in folder, Reuse
    settings, Copy prompt, Copy image, Sprite tools…), Enter/double-click to open and
    Ctrl+C to copy. ``reuse(request)`` fills the Generate tab; ``report(exc)`` shows an error."""
    model = view.gallery_model()
    assert model is not None, "set the model first"

    def guard(fn: Callable[..., Any], *args: Any) -> None:
        try:
            fn(*args)
        except StudioError as exc:
            report(exc)

    async def guarded(aw: Awaitable[Any]) -> None:
        try:
            await aw
        except StudioError as exc:
            report(exc)

    async def reuse_record(rec: ImageRecord) -> None:
        request = await core.index.request_for(rec) if core.index is not None else rec.fallback_request()
        reuse(request)

    def paths(recs: Sequence[ImageRecord]) -> list:
        return [model.abs_path(r) for r in recs]

    def copy_image(recs: Sequence[ImageRecord]) -> None:
        tasks.spawn(guarded(actions.copy_to_clipboard(paths(recs))), name="copy-image")

    handlers = actions.MenuHandlers(
        open=lambda rec: tasks.spawn(guarded(actions.open_in_viewer(model.abs_path(rec))), name="open"),
        show_in_folder=lambda rec: tasks.spawn(guarded(actions.show_in_folder(model.abs_path(rec))),
                                               name="show in folder"),
        reuse=lambda rec: tasks.spawn(guarded(reuse_record(rec)), name="reuse"),
        copy_prompt=lambda rec: QGuiApplication.clipboard().setText(rec.prompt),
        edit=(lambda rec: send(model.abs_path(rec), "init")) if send else None,
        use_reference=(lambda rec: send(model.abs_path(rec), "reference")) if send else None,
        copy_image=copy_image,
        sprite_tools=lambda recs: guard(actions.open_sprite_tools, view, core, paths(recs)),
    )
    view.menu_handlers = handlers
    view.open_requested.connect(handlers.open)
    view.copy_requested.connect(copy_image)
    view.drag_failed.connect(report)
    return handlers
