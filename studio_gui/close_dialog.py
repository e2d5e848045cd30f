"""The question asked when the window closes with work in flight.

Closing used to cancel running (possibly paid) jobs without a word. Now the user picks:
wait for the work to finish, cancel it and quit, or keep the queue for next time (the
default: nothing is lost and nothing is paid again unless they resume it). Esc or
"Don't close" leaves the window open.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget

from studio_core.plural import counted

WAIT, CANCEL, KEEP = "wait", "cancel", "keep"


@dataclass(frozen=True)
class WorkInFlight:
    running: int = 0
    waiting: int = 0
    unsaved: int = 0
    paid: int = 0  # of the running and waiting jobs, how many are on a service that bills per image

    @property
    def any(self) -> bool:
        return bool(self.running or self.waiting or self.unsaved)

    @property
    def jobs(self) -> int:
        return self.running + self.waiting


def work_in_flight(core) -> WorkInFlight:
    from studio_core.services import service_info
    from studio_core.errors import StudioError

    counts = core.work_in_flight()
    paid = 0
    for entry in core.jobs.entries():
        if entry.state.value not in ("running", "queued"):
            continue
        try:
            paid += service_info(entry.request.service).kind == "cloud"
        except StudioError:
            pass
    return WorkInFlight(counts.get("running", 0), counts.get("waiting", 0), counts.get("unsaved", 0), paid)


def describe(work: WorkInFlight) -> tuple[str, str]:
    """The dialog's question and its explanation, in plain words."""
    parts = []
    if work.running:
        parts.append(f"{counted(work.running, 'job')} {'is' if work.running == 1 else 'are'} running")
    if work.waiting:
        parts.append(f"{counted(work.waiting, 'job')} {'is' if work.waiting == 1 else 'are'} waiting")
    if work.unsaved:
        parts.append(f"{counted(work.unsaved, 'image')} could not be saved")
    head = " and ".join(parts[:2]) if len(parts) <= 2 else ", ".join(parts[:-1]) + " and " + parts[-1]
    question = head[0].upper() + head[1:] + ". Close anyway?"
    lines = []
    if work.jobs:
        lines.append("Keep the queue: the jobs stop now and wait for you next time; nothing runs again "
                     "unless you press Resume.")
        if work.paid:
            lines.append(f"{counted(work.paid, 'job')} {'is' if work.paid == 1 else 'are'} on a paid service: "
                         "a job stopped while running may already be billed, and resuming it runs it again.")
    if work.unsaved:
        lines.append("Images that could not be saved stay in the recovery folder whatever you choose; "
                     "the Saved tab offers them back.")
    return question, "\n\n".join(lines)


class CloseDialog(QMessageBox):
    """Non-blocking: ``chosen`` carries "wait", "cancel", "keep", or "" for don't close."""

    chosen = Signal(str)

    def __init__(self, work: WorkInFlight, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("CloseDialog")
        self.setWindowTitle("Close Cloud AI Art Studio")
        self.setIcon(QMessageBox.Icon.Question)
        question, info = describe(work)
        self.setText(question)
        self.setInformativeText(info)
        self.buttons: dict[str, object] = {}
        if work.jobs:
            self.buttons[WAIT] = self.addButton("Wait for it to finish", QMessageBox.ButtonRole.AcceptRole)
            self.buttons[CANCEL] = self.addButton("Cancel and quit", QMessageBox.ButtonRole.DestructiveRole)
            self.buttons[KEEP] = self.addButton("Keep the queue for next time", QMessageBox.ButtonRole.AcceptRole)
        else:
            # Only unsaved images: they are safe in the recovery folder, so quitting loses nothing.
            self.buttons[KEEP] = self.addButton("Quit", QMessageBox.ButtonRole.AcceptRole)
        self.buttons[""] = self.addButton("Don't close", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.buttons[KEEP])
        self.setEscapeButton(self.buttons[""])
        self._answered = False
        self.buttonClicked.connect(self._on_clicked)
        self.finished.connect(lambda _r: self._answer(""))

    def choose(self, choice: str) -> None:
        """Answer as if the button for ``choice`` was clicked (tests, keyboard)."""
        self.buttons[choice].click()

    def _on_clicked(self, button) -> None:
        for choice, b in self.buttons.items():
            if b is button:
                self._answer(choice)
                return

    def _answer(self, choice: str) -> None:
        if not self._answered:
            self._answered = True
            self.chosen.emit(choice)
