"""FitView: the VRAM gauge, the estimate against the budget in words, and the planner's fixes.

Proposals are offered, never applied on their own: "Make it fit" applies the first one that
fits, the menu lists them all, each with its explanation as tooltip and inline text.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from studio_core.gpu import VramInfo
from studio_core.hardware.planner import Assessment, FitLevel, Proposal
from studio_core.hardware.profiles import HardwareProfile
from studio_gui.comfy_settings.vram_gauge import COLOURS, VramGauge

_WORDS = {FitLevel.ok: "fits", FitLevel.near: "close to the limit", FitLevel.over: "over the safe budget"}


class FitView(QWidget):
    proposal_chosen = Signal(object)  # Proposal

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(3)
        row = QHBoxLayout()
        self.gauge = VramGauge()
        row.addWidget(QLabel("VRAM"))
        row.addWidget(self.gauge, 1)
        self.numbers = QLabel()
        self.numbers.setAccessibleName("VRAM figures")
        row.addWidget(self.numbers)
        lay.addLayout(row)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setAccessibleName("Estimate")
        lay.addWidget(self.verdict)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: palette(placeholder-text);")
        self.note.hide()
        lay.addWidget(self.note)
        fix = QHBoxLayout()
        self.fix_button = QToolButton()
        self.fix_button.setText("Make it fit")
        self.fix_button.setAccessibleName("Make it fit")
        self.fix_button.setPopupMode(QToolButton.ToolButtonPopupMode.MenuButtonPopup)
        self.fix_button.clicked.connect(self._apply_best)
        self.menu = QMenu(self)
        self.fix_button.setMenu(self.menu)
        self.fix_text = QLabel()
        self.fix_text.setWordWrap(True)
        fix.addWidget(self.fix_button, 0)
        fix.addWidget(self.fix_text, 1)
        self.fix_row = QWidget()
        self.fix_row.setLayout(fix)
        fix.setContentsMargins(0, 0, 0, 0)
        self.fix_row.hide()
        lay.addWidget(self.fix_row)
        self._best: Proposal | None = None
        self._shown: tuple[Proposal, ...] | None = None
        self.assessment: Assessment | None = None

    def show_assessment(self, a: Assessment, *, profile: HardwareProfile, gpu: VramInfo | None,
                        note: str = "", profile_guessed: bool = False) -> None:
        self.assessment = a
        total = gpu.total_mib if gpu else profile.total_mib
        used = gpu.used_mib if gpu else None
        self.gauge.set_values(total_mib=total, used_mib=used, budget_mib=a.budget_mib, estimate_mib=a.peak_mib,
                              level=a.level)
        used_txt = f"{used / 1024:.1f} / {total / 1024:.1f} GB" if used is not None else f"– / {total / 1024:.1f} GB"
        extra = []
        if gpu is not None and gpu.utilisation_pct is not None:
            extra.append(f"{gpu.utilisation_pct}%")
        if gpu is not None and gpu.temperature_c is not None:
            extra.append(f"{gpu.temperature_c} °C")
        self.numbers.setText(used_txt + " in use" + (" · " + " · ".join(extra) if extra else ""))
        colour = COLOURS[a.level].name()
        card = f"the {profile.name} profile (assumed)" if profile_guessed else f"this {profile.name} card"
        self.verdict.setText(
            f"<span style='color:{colour}; font-weight:600'>Estimated peak {a.peak_mib / 1024:.1f} GB — "
            f"{_WORDS[a.level]}</span> (safe budget {a.budget_mib / 1024:.1f} GB on {card}; "
            f"most memory goes to {a.estimate.dominant}).")
        self.note.setText(note)
        self.note.setVisible(bool(note))
        self._best = next((p for p in a.proposals if p.fits), a.proposals[0] if a.proposals else None)
        self.fix_row.setVisible(self._best is not None)
        # The gauge refreshes every second; rebuilding an open menu would close it under the cursor.
        if a.proposals == self._shown:
            return
        self._shown = a.proposals
        self.menu.clear()
        for p in a.proposals:
            act = self.menu.addAction(p.title + ("" if p.fits else " (still over)"))
            act.setToolTip(p.explanation)
            act.triggered.connect(lambda _=False, p=p: self.proposal_chosen.emit(p))
        self.menu.setToolTipsVisible(True)
        if self._best is not None:
            self.fix_button.setToolTip(f"{self._best.title}: {self._best.explanation}")
            # Inline: the first sentence and the outcome; the whole explanation is the tooltip.
            why, _, after = self._best.explanation.partition(" Estimated peak afterwards: ")
            first = why.split(". ")[0].rstrip(".") + "."
            self.fix_text.setText(f"<b>{self._best.title}.</b> {first} Afterwards: {after}")
            self.fix_text.setToolTip(self._best.explanation)
        self.fix_row.setVisible(self._best is not None)

    def _apply_best(self) -> None:
        if self._best is not None:
            self.proposal_chosen.emit(self._best)
