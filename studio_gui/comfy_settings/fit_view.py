"""FitView: the VRAM gauge, the estimate against the budget in words, and the planner's fixes.

Proposals are offered, never applied on their own: "Make it fit" applies the first one that
fits, the menu lists them all, each with its explanation as tooltip and inline text.

With an unknown card (no driver reading, no GPU from the server) there is no verdict: the
estimate is shown in a neutral colour with the smallest usual card that has room for it, and
no "Make it fit" (fitting an assumed card would change the user's job for nothing). With a custom workflow the proposals that only the built-in graph reads (tiled VAE
decode, render smaller and upscale) are greyed out, with the reason as tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from studio_core.gpu import VramInfo
from studio_core.hardware.planner import Assessment, FitLevel, Proposal, ProposalKind
from studio_core.hardware.profiles import HardwareProfile, smallest_card_for
from studio_gui.comfy_settings.vram_gauge import VramGauge, level_colour

_WORDS = {FitLevel.ok: "fits", FitLevel.near: "close to the limit", FitLevel.over: "over the safe budget"}
# Proposals that change the app's own graph; a custom workflow file has its own decode and size.
BUILT_IN_ONLY_KINDS = (ProposalKind.tiled_vae, ProposalKind.lower_resolution)
BUILT_IN_ONLY_OPTIONS = ("tiled_vae", "upscale_to")
BUILT_IN_ONLY_TIP = ("Only the built-in workflow reads this: it switches the app's own graph to a tiled VAE decode "
                     "or renders smaller and upscales afterwards. A custom workflow file decodes and sizes the image "
                     "its own way, so this would change nothing there.")
NO_FIX_WITH_CUSTOM = ("The planner's fixes here change the built-in graph (tiled decode, upscaling), which a custom "
                      "workflow does not use: lower the size or batch yourself, or start ComfyUI with --lowvram.")


def built_in_only(p: Proposal) -> bool:
    """Whether ``p`` needs the built-in graph (it carries a tiled decode or an upscale, also from an earlier step)."""
    return p.kind in BUILT_IN_ONLY_KINDS or any(k in p.options for k in BUILT_IN_ONLY_OPTIONS)


def card_size(profile: HardwareProfile) -> str:
    return f"{round(profile.total_mib / 1024, 1):g} GB"


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
        self.custom_workflow = False
        self.guessed = False

    def set_custom_workflow(self, on: bool) -> None:
        """Grey out the proposals only the built-in graph reads; takes effect on the next show_assessment()."""
        if on != self.custom_workflow:
            self.custom_workflow = on
            self._shown = None  # rebuild the menu

    def usable(self, p: Proposal) -> bool:
        return not (self.custom_workflow and built_in_only(p))

    def show_assessment(self, a: Assessment, *, profile: HardwareProfile, gpu: VramInfo | None,
                        note: str = "", profile_guessed: bool = False) -> None:
        self.assessment = a
        self.guessed = profile_guessed
        total = gpu.total_mib if gpu else profile.total_mib
        used = gpu.used_mib if gpu else None
        budget = a.budget_mib
        room = smallest_card_for(a.peak_mib) if profile_guessed else None
        if profile_guessed:
            # Drawn against the smallest card with room for it, so the bar never looks "over".
            total = room.total_mib if room else max(a.peak_mib * 1.1, 1.0)
            budget = room.safe_mib if room else a.peak_mib
        self.gauge.set_values(total_mib=total, used_mib=used, budget_mib=budget, estimate_mib=a.peak_mib,
                              level=a.level, guessed=profile_guessed)
        if used is not None:
            used_txt = f"{used / 1024:.1f} / {total / 1024:.1f} GB in use"
        elif profile_guessed:
            used_txt = "card size unknown"
        else:
            used_txt = f"– / {total / 1024:.1f} GB in use"
        extra = []
        if gpu is not None and gpu.utilisation_pct is not None:
            extra.append(f"{gpu.utilisation_pct}%")
        if gpu is not None and gpu.temperature_c is not None:
            extra.append(f"{gpu.temperature_c} °C")
        self.numbers.setText(used_txt + (" · " + " · ".join(extra) if extra else ""))
        colour = level_colour(a.level, guessed=profile_guessed).name()
        peak = f"Estimated peak {a.peak_mib / 1024:.1f} GB"
        if profile_guessed:
            # Nothing was measured: no verdict against a card nobody has said the user owns.
            needs = (f"a card of {card_size(room)} or more has room for it" if room is not None
                     else "that is more than a 24 GB card holds")
            self.verdict.setText(
                f"<span style='color:{colour}; font-weight:600'>{peak} — card size unknown</span>, so the app "
                f"can't tell whether it fits; {needs} (most memory goes to {a.estimate.dominant}).")
            self.verdict.setToolTip("The app could not read the card: there is no NVIDIA driver on this computer and "
                                    "the server has not reported a GPU. Once ComfyUI answers, its GPU is used instead.")
        else:
            self.verdict.setText(
                f"<span style='color:{colour}; font-weight:600'>{peak} — {_WORDS[a.level]}</span> (safe budget "
                f"{a.budget_mib / 1024:.1f} GB on this {profile.name} card; most memory goes to {a.estimate.dominant}).")
            self.verdict.setToolTip("")
        self.note.setText(note)
        self.note.setVisible(bool(note))
        usable = [p for p in a.proposals if self.usable(p)]
        self._best = next((p for p in usable if p.fits), usable[0] if usable else None)
        # The gauge refreshes every second; rebuilding an open menu would close it under the cursor.
        if a.proposals != self._shown:
            self._shown = a.proposals
            self._rebuild(a.proposals)
        self.fix_row.setVisible(bool(a.proposals) and not profile_guessed)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._hold_wrapped_height()

    def event(self, event) -> bool:
        done = super().event(event)
        if event.type() == QEvent.Type.LayoutRequest:  # a label's text changed: new wrapped height
            self._hold_wrapped_height()
        return done

    def _hold_wrapped_height(self) -> None:
        # The panel's QFormLayout gives a full-width row its plain minimum height, not the
        # height its wrapped lines need at this width, so the verdict and the "Make it fit"
        # text were cut off. Asking for that height as the minimum makes the form give it.
        need = self.heightForWidth(self.width()) if self.width() > 0 else -1
        if need > 0 and need != self.minimumHeight():
            self.setMinimumHeight(need)

    def _rebuild(self, proposals: tuple[Proposal, ...]) -> None:
        self.menu.clear()
        for p in proposals:
            act = self.menu.addAction(p.title + ("" if p.fits else " (still over)"))
            if self.usable(p):
                act.setToolTip(p.explanation)
                act.triggered.connect(lambda _=False, p=p: self.proposal_chosen.emit(p))
            else:
                act.setEnabled(False)
                act.setToolTip(BUILT_IN_ONLY_TIP)
        self.menu.setToolTipsVisible(True)
        best = self._best
        self.fix_button.setEnabled(best is not None)
        if best is not None:
            self.fix_button.setToolTip(f"{best.title}: {best.explanation}")
            # Inline: the first sentence and the outcome; the whole explanation is the tooltip.
            why, _, after = best.explanation.partition(" Estimated peak afterwards: ")
            first = why.split(". ")[0].rstrip(".") + "."
            self.fix_text.setText(f"<b>{best.title}.</b> {first} Afterwards: {after}")
            self.fix_text.setToolTip(best.explanation)
        elif proposals:
            self.fix_button.setToolTip(BUILT_IN_ONLY_TIP)
            self.fix_text.setText(NO_FIX_WITH_CUSTOM)
            self.fix_text.setToolTip(BUILT_IN_ONLY_TIP)

    def _apply_best(self) -> None:
        if self._best is not None:
            self.proposal_chosen.emit(self._best)
