"""ModelSelector (the seed's ComfyUIModelSelector): the server's checkpoints with what each needs.

Each entry shows the family, whether a server has it, its native size and the VRAM it needs
at that size. Under the list: which servers have the chosen model (when there is more than
one server), or that none has it; what family it is and where that came from; and, when
nothing could tell, a one-time chooser whose answer the panel remembers per server.
SDXL Base 1.0 is chosen when present; with no checkpoint at all, the empty state says what
to download and where it goes.
"""

from __future__ import annotations

import html
from typing import Callable, Mapping

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QVBoxLayout, QWidget

from studio_core.hardware.estimator import estimate_vram
from studio_core.hardware.families import (SOURCE_WORDS, UNKNOWN, FamilyGuess, ModelFamily, detect_family,
                                           family_by_id)
from studio_core.models import ModelInfo
from studio_gui.eliding_combo import ElidingComboBox
from studio_gui.comfy_settings.size_picker import ERROR_STYLE

DEFAULT_MODEL = "sd_xl_base_1.0.safetensors"
EMPTY_TEXT = ("The server has no checkpoints. Download one, e.g. <b>sd_xl_base_1.0.safetensors</b> "
              "(6.9 GB, from stabilityai/stable-diffusion-xl-base-1.0 on Hugging Face), into "
              "<b>ComfyUI/models/checkpoints</b>, then restart ComfyUI.")
COMBO_TIP = "Checkpoints on the ComfyUI servers, with the VRAM each needs at its native size"
ModelRole = Qt.ItemDataRole.UserRole
NAME_WIDTH_PX = 220  # a file name in a sentence under the list (the list's tooltip has it whole)
# The inline chooser's answers, as families.py ids ("other": none of these, estimated as SDXL).
CHOICES = (("sd15", "SD 1.5"), ("sdxl", "SDXL"), ("sd3", "SD3"), ("flux", "FLUX"), ("other", "Other"))
# Where the family came from, said of a checkpoint (families.SOURCE_WORDS says it of any file).
SOURCE_TEXT = {**SOURCE_WORDS, "metadata": "from the checkpoint's metadata", "tensors": "from the file's layers",
               "user": "as you said"}


def precision_of(name: str) -> str:
    return "fp8" if "fp8" in name.lower() else "fp16"


def describe(name: str, family: ModelFamily, *, present: bool, absent_text: str = "not on the server") -> str:
    w, h = family.native
    need = estimate_vram(family, width=w, height=h, precision=precision_of(name)).peak_gb
    base = name.rsplit("/", 1)[-1]
    tail = f"{family.label} · {w}×{h} · needs ~{need:.1f} GB"
    return f"{base} — {tail}" + ("" if present else f" · {absent_text}")


def _names(servers: tuple[str, ...]) -> str:
    return servers[0] if len(servers) == 1 else ", ".join(servers[:-1]) + " and " + servers[-1]


class ModelSelector(QWidget):
    """``model_changed(name)`` fires when the user (or a reload) changes the choice;
    ``family_chosen(name, answer)`` when the user answers the "which kind of model" question."""

    model_changed = Signal(str)
    family_chosen = Signal(str, str)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        # Long file names are elided in the box (the column must fit a 1024 px screen); the
        # list that drops down and the tooltip show them whole.
        self.combo = ElidingComboBox(min_chars=16)
        self.combo.setAccessibleName("Model")
        self.combo.setToolTip(COMBO_TIP)
        self.combo.currentIndexChanged.connect(self._on_index)
        self.empty = QLabel(EMPTY_TEXT)
        self.empty.setWordWrap(True)
        # A wrapped label in a form row is given one line's height; room for three is needed.
        self.empty.setMinimumHeight(self.empty.fontMetrics().lineSpacing() * 3 + 6)
        self.empty.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.empty.hide()
        self.where = QLabel()
        self.where.setWordWrap(True)
        self.where.setAccessibleName("Servers with this model")
        self.where.hide()
        self.family_line = QLabel()
        self.family_line.setWordWrap(True)
        self.family_line.setAccessibleName("Model family")
        self.family_line.setStyleSheet("color: palette(placeholder-text);")
        self.family_line.setTextFormat(Qt.TextFormat.RichText)
        self.family_line.linkActivated.connect(lambda _link: self._show_chooser(True))
        self.chooser = self._build_chooser()
        lay.addWidget(self.combo)
        lay.addWidget(self.empty)
        lay.addWidget(self.where)
        lay.addWidget(self.family_line)
        lay.addWidget(self.chooser)
        self._loading = False
        self._hints: dict[str, str] = {}  # the server's/provider's family per model (from its name or folder)
        self._guesses: dict[str, FamilyGuess] = {}  # the one decision per model, once made
        self._where: dict[str, tuple[str, ...]] | None = None  # None: no pool information
        self._servers = 0
        self._missing: Callable[[str], bool] | None = None  # None: not known (no list read yet)
        self._absent: set[str] = set()  # names added because they were asked for, not listed
        self._offline = False  # the server did not answer: nothing is known about what it has
        self._asking = False  # the chosen model's family is for the user to say
        self._update_lines()

    def _build_chooser(self) -> QWidget:
        box = QWidget()
        box.setAccessibleName("Which kind of model")
        v = QVBoxLayout(box)
        v.setContentsMargins(0, 0, 0, 0)
        v.setSpacing(2)
        self.chooser_text = QLabel()
        self.chooser_text.setWordWrap(True)
        v.addWidget(self.chooser_text)
        row = QHBoxLayout()
        row.setSpacing(4)
        self.choice_buttons: dict[str, QToolButton] = {}
        for fid, label in CHOICES:
            # Tool buttons: a push button is at least 80 px wide, and five of them were wider
            # than the column on a 1024 px screen.
            b = QToolButton()
            b.setText(label)
            b.setAccessibleName(f"Model family {label}")
            b.setToolTip("Other: none of these; sizes and memory are then estimated as for SDXL" if fid == "other"
                         else f"This model is {label} (or a fine-tune of it)")
            b.clicked.connect(lambda _=False, f=fid: self._on_choice(f))
            self.choice_buttons[fid] = b
            row.addWidget(b)
        row.addStretch(1)
        v.addLayout(row)
        box.hide()
        return box

    # -- what the panel reads ---------------------------------------------------------------
    def current(self) -> str:
        return self.combo.currentData(ModelRole) or ""

    def guess(self, name: str | None = None) -> FamilyGuess:
        """The family of ``name`` (default: the chosen model) and where it came from; before
        the decision is in, what the name (or the server's folder) says."""
        name = name if name is not None else (self.current() or DEFAULT_MODEL)
        made = self._guesses.get(name)
        if made is not None:
            return made
        fam = detect_family(name)
        if fam is not UNKNOWN:
            return FamilyGuess(fam, "name")
        # The provider's hint for a name that says nothing: the folder it is listed under.
        hinted = family_by_id(self._hints.get(name, ""))
        return FamilyGuess(hinted, "folder") if hinted is not None else FamilyGuess(UNKNOWN, "")

    def family(self) -> ModelFamily:
        return self.guess().family

    def decided(self, name: str | None = None) -> bool:
        """Whether the family of ``name`` comes from the one decision (not only its name)."""
        return (name if name is not None else self.current()) in self._guesses

    def missing_reason(self) -> str:
        """Why the chosen model cannot run: "" unless no enabled server has it."""
        name = self.current()
        if not name or self._missing is None or not self._missing(name):
            return ""
        base = self._short(name)
        lead = f"No enabled ComfyUI server has {base}." if self._servers > 1 else \
            f"The ComfyUI server does not have {base}."
        return f"{lead} Choose another model, or put the file in ComfyUI/models/checkpoints on a server and press ↻."

    # -- filling ---------------------------------------------------------------------------
    def set_models(self, models: tuple[ModelInfo, ...] | list[ModelInfo], *, wanted: str = "") -> None:
        """Fill from the server's list; keep ``wanted`` (else SDXL Base 1.0, else the first)."""
        self._loading = True
        self._offline = False
        before = self.current()
        self.combo.clear()
        names = [m.id for m in models]
        self._hints = {m.id: m.family for m in models if m.family}
        self._absent = {m.id for m in models if not m.present}
        for m in models:
            self.combo.addItem(m.id, m.id)
        if wanted and wanted not in names and models:
            self._absent.add(wanted)
            self.combo.addItem(wanted, wanted)
        self._redescribe()
        self.empty.setVisible(not models)
        self.combo.setVisible(bool(models))
        pick = next((n for n in (wanted, DEFAULT_MODEL) if n and n in names), names[0] if names else wanted)
        self._select(pick)
        self._loading = False
        g = self._guesses.get(self.current())
        self._asking = g is not None and g.source == ""
        self._update_lines()
        if self.current() != before:
            self.model_changed.emit(self.current())

    def set_offline(self, wanted: str) -> None:
        """No answer from the server: show the configured model, marked as unchecked."""
        self._loading = True
        self._offline = True
        self.combo.clear()
        self._absent = set()
        self.combo.addItem(wanted, wanted)
        self._redescribe()
        self.empty.hide()
        self.combo.show()
        self._loading = False
        self._update_lines()

    def set_availability(self, where: Mapping[str, tuple[str, ...]] | None, missing: Callable[[str], bool] | None,
                         *, servers: int = 1) -> None:
        """Which servers have each model (None when the provider cannot say), whether no enabled
        server has a model, and how many servers there are."""
        self._where = {k: tuple(v) for k, v in where.items()} if where is not None else None
        self._missing = missing
        self._servers = max(1, servers)
        self._redescribe()
        self._update_lines()

    def set_identified(self, name: str, guess: FamilyGuess) -> None:
        """The decision on ``name``'s family is in (from the server, this computer or the user)."""
        self._guesses[name] = guess
        self._redescribe()
        if name == self.current():
            self._show_chooser(not guess.known and guess.source == "")

    def forget_decisions(self) -> None:
        """Decide every family again (after the servers were asked afresh)."""
        self._guesses.clear()
        self._show_chooser(False)

    def availability_known(self) -> bool:
        return self._missing is not None

    def select(self, name: str) -> None:
        if name and self.combo.findData(name, ModelRole) < 0:
            self._absent.add(name)
            self.combo.addItem(name, name)
            self._redescribe()
        self._select(name)

    def _select(self, name: str) -> None:
        i = self.combo.findData(name, ModelRole)
        if i >= 0:
            self.combo.setCurrentIndex(i)

    # -- showing ----------------------------------------------------------------------------
    def _short(self, name: str) -> str:
        """The file name, its middle elided when long: one unbreakable word in a wrapped label
        would set the whole column's width."""
        base = name.rsplit("/", 1)[-1]
        return self.fontMetrics().elidedText(base, Qt.TextElideMode.ElideMiddle, NAME_WIDTH_PX)

    def _absent_text(self) -> str:
        return "on no enabled server" if self._servers > 1 else "not on the server"

    def _redescribe(self) -> None:
        """Entry texts and tooltips from what is known now (family decisions, servers)."""
        for i in range(self.combo.count()):
            name = self.combo.itemData(i, ModelRole)
            present = self._offline or (name not in self._absent if self._missing is None else not self._missing(name))
            text = describe(name, self.guess(name).family, present=present, absent_text=self._absent_text())
            if self._offline:
                text += " (server not checked)"
            self.combo.setItemText(i, text)
            servers = (self._where or {}).get(name, ())
            tip = text + (f"\nOn {_names(servers)}" if servers else "")
            self.combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self._tip_current()

    def _tip_current(self) -> None:
        if not self.combo.isEnabled():
            return  # a custom workflow is in use: the panel's tooltip says why the box is off
        i = self.combo.currentIndex()
        tip = self.combo.itemData(i, Qt.ItemDataRole.ToolTipRole) if i >= 0 else None
        self.combo.setToolTip(f"{tip}\n\n{COMBO_TIP}" if tip else COMBO_TIP)

    def restore_tooltip(self) -> None:
        self._tip_current()

    def _update_lines(self) -> None:
        name = self.current()
        reason = self.missing_reason()
        servers = (self._where or {}).get(name, ())
        if reason:
            self.where.setText(reason)
            self.where.setStyleSheet(ERROR_STYLE)
        elif servers and self._servers > 1:
            self.where.setText(f"On {_names(servers)}.")
            self.where.setStyleSheet("")
        else:
            self.where.setText("")
        self.where.setVisible(bool(self.where.text()))
        base = html.escape(self._short(name))
        self.chooser_text.setText(f"Which kind of model is <b>{base}</b>? The app cannot tell from the file. "
                                  "The answer sets the sizes offered and the memory estimate, and is kept for "
                                  "this server.")
        # A model no server has cannot run anyway: the line above says so; no question yet.
        asking = self._asking and bool(name) and not reason
        self.chooser.setVisible(asking)
        g = self.guess()
        if not name or asking or reason:
            self.family_line.hide()  # the chooser's question says it; a model no server has is not run
            return
        if not self.decided(name):
            text = f"{html.escape(g.family.label)} — {SOURCE_TEXT.get(g.source, '')}, checking…" if g.known \
                else "Checking what kind of model this is…"
        elif g.source == "":
            text = "The app cannot tell what kind of model this is."
        else:
            text = f"{html.escape(g.family.label)} — {SOURCE_TEXT.get(g.source, g.source)}"
            if g.source == "user":
                text += " (<a href='change'>change</a>)"
        self.family_line.setText(text)
        self.family_line.show()

    def _show_chooser(self, on: bool) -> None:
        self._asking = on
        self._update_lines()

    def _on_choice(self, answer: str) -> None:
        name = self.current()
        self._show_chooser(False)
        if name:
            self.family_chosen.emit(name, answer)

    def _on_index(self, _i: int) -> None:
        self._tip_current()
        if not self._loading:
            g = self._guesses.get(self.current())
            self._show_chooser(g is not None and g.source == "")
            self.model_changed.emit(self.current())
