"""FramesReadyBar: the newest frame set's progress, then "Frames ready" with the sheet action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from studio_core.plural import counted


class FramesReadyBar(QFrame):
    """Progress of the newest set, then 'Frames ready' with the sheet action.

    The sheet gets each frame's transparent copy where the set made one (meta["transparent"],
    frame name -> copy): a sheet of the originals would carry the key-colour background
    the user asked to have removed."""

    make_sheet = Signal(list, dict)  # paths (transparent copies where made), meta

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("FramesReadyBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self._paths: list[Path] = []
        self._meta: dict[str, Any] = {}
        self.text = QLabel("")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sheet_button = QPushButton("Align && make sheet…")
        self.sheet_button.setToolTip("Open the frames in Sprite Tools' Sheet tab, aligned on a bottom-centre pivot")
        self.sheet_button.clicked.connect(lambda: self.make_sheet.emit(self.sheet_paths(), dict(self._meta)))
        self.close_button = QToolButton()
        self.close_button.setText("✕")
        self.close_button.setAutoRaise(True)
        self.close_button.setToolTip("Dismiss")
        self.close_button.setAccessibleName("Dismiss frames bar")
        self.close_button.clicked.connect(self.hide)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 4, 4)
        row.addWidget(self.text, 1)
        row.addWidget(self.sheet_button)
        row.addWidget(self.close_button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def show_progress(self, title: str, saved: int, total: int, lost: int) -> None:
        self.text.setText(f"{title}: {saved} of {total} ready" + (f", {lost} failed" if lost else "") + "…")
        self.setToolTip("")
        self.sheet_button.hide()
        self.show()

    def show_set(self, title: str, paths: list[Path], meta: dict[str, Any]) -> None:
        self._paths, self._meta = list(paths), dict(meta)
        failed = list(meta.get("failed") or ())
        expected = int(meta.get("expected") or len(paths))
        animation = meta.get("kind") == "animation"
        if not failed:
            self.text.setText(f"✓ {title}: {counted(len(paths), 'frame')} ready (seed {meta.get('seed')}).")
            self.setToolTip("")
        else:
            name, why = failed[0]
            more = f" and {len(failed) - 1} more" if len(failed) > 1 else ""
            self.text.setText(f"⚠ {title}: {len(paths)} of {expected} ready. {name}{more} failed: {why}")
            self.setToolTip("\n".join(f"{n}: {w}" for n, w in failed))
        self.sheet_button.setText("Align && make sheet…" if animation else "Make sheet…")
        self.sheet_button.setEnabled(bool(paths))
        self.sheet_button.show()
        self.show()

    def paths(self) -> list[Path]:
        """The frames as saved (the originals)."""
        return list(self._paths)

    def sheet_paths(self) -> list[Path]:
        """The frames for the sheet: each frame's transparent copy where there is one."""
        names = [str(n) for n in self._meta.get("names") or ()]
        copies = self._meta.get("transparent") or {}
        if not copies or len(names) != len(self._paths):
            return list(self._paths)
        return [Path(copies[n]) if n in copies else p for n, p in zip(names, self._paths)]
