"""The Generate tab's "waiting — resume?" banner: jobs left unfinished last time.

Nothing from last time runs by itself (a cloud job bills each time it runs), so the
banner lists each job with its service and whether that service is paid, and offers
Resume all / Dismiss. It follows ``core.session.waiting`` through QueueRestored events.
"""

from __future__ import annotations

import html
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from studio_core.errors import StudioError
from studio_core.plural import counted
from studio_core.services import service_info
from studio_gui.bridge import bridge_for
from studio_gui.offer_banner import OfferBanner

MAX_LISTED = 6  # more lines would push the prompt out of sight; the rest are counted


def service_words(service: str, paid: bool) -> str:
    try:
        name = service_info(service).name
    except StudioError:
        name = service
    return f"{name}, paid" if paid else f"{name}, free"


def job_line(waiting: Any) -> str:
    prompt = " ".join(waiting.request.prompt.split())
    if len(prompt) > 60:
        prompt = prompt[:57].rstrip() + "…"
    return f"“{prompt or 'no prompt'}” — {service_words(waiting.request.service, waiting.paid)}"


class ResumeBanner(OfferBanner):
    def __init__(self, core: Any, parent: QWidget | None = None):
        super().__init__("ResumeBanner", "Jobs waiting from last time", parent=parent)
        self.core = core
        self.resume_button = self.add_action("Resume all", "Queue these jobs again; paid services bill them again",
                                             self.resume_all)
        self.dismiss_button = self.add_action("Dismiss", "Forget these jobs without running them", self.dismiss_all)
        self.jobs = QLabel()
        self.jobs.setWordWrap(True)
        self.jobs.setTextFormat(Qt.TextFormat.RichText)
        self.jobs.setAccessibleName("Waiting jobs")
        self.body.addWidget(self.jobs)
        # A method on the bridge: Qt drops it with the banner, so no deleted banner is called.
        bridge_for(core).queue_restored.connect(self._on_restored)
        self.refresh()

    def refresh(self) -> None:
        """Show what waits now (call again after putting the banner in a layout: that hides it)."""
        self.show_waiting(list(getattr(self.core.session, "waiting", ())))

    def show_waiting(self, waiting: list[Any]) -> None:
        if not waiting:
            self.hide()
            return
        paid = sum(1 for w in waiting if w.paid)
        self.title.setText(f"{counted(len(waiting), 'job')} from last time "
                           f"{'is' if len(waiting) == 1 else 'are'} waiting. Resume?"
                           + (f" ({paid} on a paid service: resuming bills {'it' if paid == 1 else 'them'} again.)"
                              if paid else ""))
        lines = [html.escape(job_line(w)) for w in waiting[:MAX_LISTED]]
        if len(waiting) > MAX_LISTED:
            lines.append(f"and {len(waiting) - MAX_LISTED} more")
        self.jobs.setText("<br>".join("• " + line for line in lines))
        self.show()

    def _on_restored(self, entries: tuple[Any, ...]) -> None:
        self.show_waiting(list(entries))

    def resume_all(self) -> list[str]:
        try:
            return self.core.session.resume()
        except StudioError as exc:
            from studio_gui.errors import present_error

            present_error(self, exc)
            return []

    def dismiss_all(self) -> None:
        self.core.session.dismiss()
