"""PromptPanel: the prompt box, its validation, quick prompt chips and the negative prompt."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio_core.resources import resource_path
from studio_gui.generate.flow_layout import FlowLayout

log = logging.getLogger(__name__)

MAX_PROMPT_CHARS = 2000
MAX_NEGATIVE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Suggestion:
    label: str
    prompt: str


def load_suggestions(path: Path | None = None) -> list[Suggestion]:
    """Read the quick prompts (blocking: call from a thread). A bad file yields none, logged."""
    path = path or resource_path("prompt_suggestions.json")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = data["suggestions"] if isinstance(data, dict) else data
        out = [Suggestion(str(i["label"]), str(i["prompt"])) for i in items
               if isinstance(i, dict) and i.get("label") and i.get("prompt")]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("quick prompts not loaded from %s: %s", path, exc)
        return []
    return out


class PromptEdit(QPlainTextEdit):
    """Plain text only: pasted rich text would otherwise bring formatting the prompt can't hold."""

    def __init__(self, placeholder: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText(placeholder)
        self.setTabChangesFocus(True)

    def insertFromMimeData(self, source) -> None:
        if source.hasText():
            self.insertPlainText(source.text())


class PromptPanel(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(6)

        label = QLabel("&Prompt")
        self.prompt = PromptEdit("Describe the sprite, e.g. “a red health potion, game item icon”")
        self.prompt.setAccessibleName("Prompt")
        self.prompt.setMinimumHeight(70)
        self.prompt.setMaximumHeight(130)
        label.setBuddy(self.prompt)
        lay.addWidget(label)
        lay.addWidget(self.prompt)

        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setAccessibleName("Prompt check")
        lay.addWidget(self.message)

        self.chips_title = QLabel("Quick prompts:")
        self.chips_title.setVisible(False)
        lay.addWidget(self.chips_title)
        self.chips = QWidget()
        self.chips.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        # Boxes size a height-for-width child at its minimum width: without a floor, one
        # chip per line makes the whole column tall enough to scroll.
        self.chips.setMinimumWidth(360)
        self.chips_layout = FlowLayout(self.chips, spacing=4)
        lay.addWidget(self.chips)

        self.negative_toggle = QToolButton()
        self.negative_toggle.setText("Negative prompt")
        self.negative_toggle.setToolTip("Things the image should not contain")
        self.negative_toggle.setCheckable(True)
        self.negative_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.negative_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.negative_toggle.setAutoRaise(True)
        self.negative_toggle.toggled.connect(self._on_negative_toggled)
        self.negative = PromptEdit("e.g. blurry, text, watermark, cropped")
        self.negative.setAccessibleName("Negative prompt")
        self.negative.setMaximumHeight(70)
        self.negative.setVisible(False)
        lay.addWidget(self.negative_toggle)
        lay.addWidget(self.negative)

        self.prompt.textChanged.connect(self._on_text_changed)
        self.negative.textChanged.connect(self._on_text_changed)
        self._on_text_changed()

    # -- data -----------------------------------------------------------------------
    def text(self) -> str:
        return self.prompt.toPlainText().strip()

    def negative_text(self) -> str:
        return self.negative.toPlainText().strip()

    def set_texts(self, prompt: str, negative: str = "") -> None:
        self.prompt.setPlainText(prompt)
        self.negative.setPlainText(negative)
        if negative:
            self.negative_toggle.setChecked(True)

    def problem(self) -> str:
        """Why Generate can't run with this prompt, in plain words; "" when it can."""
        n = len(self.text())
        if n == 0:
            return "Type a prompt that describes the sprite."
        if n > MAX_PROMPT_CHARS:
            return f"The prompt is {n:,} characters long; the limit is {MAX_PROMPT_CHARS:,}. Shorten it to generate."
        neg = len(self.negative_text())
        if neg > MAX_NEGATIVE_CHARS:
            return f"The negative prompt is {neg:,} characters long; the limit is {MAX_NEGATIVE_CHARS:,}."
        return ""

    def set_suggestions(self, suggestions: list[Suggestion]) -> None:
        while self.chips_layout.count():
            item = self.chips_layout.takeAt(0)
            if item is not None and item.widget() is not None:
                item.widget().deleteLater()
        for s in suggestions:
            chip = QToolButton()
            chip.setText(s.label)
            chip.setToolTip(s.prompt)
            chip.setAccessibleName(f"Quick prompt: {s.label}")
            chip.setObjectName("promptChip")
            chip.setStyleSheet("QToolButton#promptChip { border: 1px solid palette(mid); border-radius: 10px;"
                               " padding: 2px 9px; }"
                               "QToolButton#promptChip:hover { background: palette(midlight); }")
            chip.clicked.connect(lambda _=False, p=s.prompt: self._use_suggestion(p))
            self.chips_layout.addWidget(chip)
        self.chips_title.setVisible(bool(suggestions))
        self.chips.updateGeometry()

    def chip_buttons(self) -> list[QToolButton]:
        return [self.chips_layout.itemAt(i).widget() for i in range(self.chips_layout.count())]

    # -- slots ------------------------------------------------------------------------
    def _use_suggestion(self, prompt: str) -> None:
        self.prompt.setPlainText(prompt)
        self.prompt.setFocus()
        cursor = self.prompt.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        self.prompt.setTextCursor(cursor)

    def _on_negative_toggled(self, on: bool) -> None:
        self.negative.setVisible(on)
        self.negative_toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)

    def _on_text_changed(self) -> None:
        n = len(self.text())
        problem = self.problem()
        if n == 0:
            # Not an error yet: the user simply hasn't typed. Say what unlocks Generate.
            self.message.setText("Describe the sprite to enable Generate (Ctrl+Enter).")
            self.message.setStyleSheet("color: palette(placeholder-text);")
        elif problem:
            self.message.setText(problem)
            self.message.setStyleSheet("color: #c0392b; font-weight: 600;")
        else:
            self.message.setText(f"{n:,} / {MAX_PROMPT_CHARS:,} characters")
            self.message.setStyleSheet("color: palette(placeholder-text);")
        self.changed.emit()
