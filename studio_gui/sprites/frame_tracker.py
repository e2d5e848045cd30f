"""FrameSetView: the window's view of the frame sets the core's session follows.

The session (:mod:`studio_core.frame_sets`) puts each saved image in its frame slot and
publishes ``FrameSetProgress`` and ``FrameSetFinished``; this view only picks out the sets
this window asked for and turns them into signals for the "Frames ready" bar:

    view = FrameSetView(core, parent)
    view.set_finished.connect(on_set)          # (paths: list[Path], meta: dict)
    view.expect(plan, title="Walk")            # before core.session.submit_plan(plan)

``expect`` comes before the submit because a set whose jobs are all over at once (a job
refused on submit) is finished inside ``submit_plan``.
"""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from studio_core.frame_plans import FramePlan
from studio_core.frame_sets import FrameSetResult
from studio_gui.bridge import bridge_for

log = logging.getLogger(__name__)


class FrameSetView(QObject):
    set_finished = Signal(list, dict)  # paths in frame order (missing frames left out), meta
    set_progress = Signal(str, int, int, int)  # set id, images saved, images expected, frames lost
    frame_failed = Signal(str, str, str)  # set id, frame name, plain-words reason

    def __init__(self, core: Any, parent: QObject | None = None):
        super().__init__(parent)
        self.core = core
        self._titles: dict[str, str] = {}  # the sets this view shows -> their title
        bridge = bridge_for(core)
        bridge.frame_set_progress.connect(self._on_progress)
        bridge.frame_set_finished.connect(self._on_finished)

    @property
    def running(self) -> int:
        return len(self._titles)

    def is_running(self, set_id: str) -> bool:
        return set_id in self._titles

    def title(self, set_id: str) -> str:
        return self._titles.get(set_id, "Frames")

    def expect(self, plan: FramePlan, title: str) -> None:
        """Show the set ``plan`` once it is submitted."""
        self._titles[plan.set_id] = title

    def _on_progress(self, ev: Any) -> None:
        if ev.set_id in self._titles:
            self.set_progress.emit(ev.set_id, ev.saved, ev.total, ev.lost)

    def _on_finished(self, result: FrameSetResult) -> None:
        title = self._titles.pop(result.set_id, None)
        if title is None:
            return
        for name, why in result.failed:
            self.frame_failed.emit(result.set_id, name, why)
        meta = dict(result.meta, kind=result.kind, set_id=result.set_id, title=title,
                    transparent={n: str(p) for n, p in result.transparent.items()})
        self.set_finished.emit(list(result.paths), meta)
