"""Start-up probe for benchmarks/bench_startup.py: when is the window *usable*?

Installed only when ``STUDIO_BENCH_STARTUP`` is set (see ``app.run``); otherwise nothing
in this module runs. "Usable" means both of these have been painted at least once:

* a service card in the services column (the cards are built with the window), and
* the Generate tab's Generate button, which only exists once the real Generate tab has
  replaced its placeholder (it is built just after the window first paints).

The probe prints ``SHOWN <s>`` at the window's first paint and ``USABLE <s>`` when both
of the above have painted, each as seconds since ``BENCH_T0`` (the wall-clock time the
benchmark started the process), and then closes the window so the process ends through
the normal shut-down path. With ``STUDIO_BENCH_MODULES=<file>`` it also writes the names
of the modules loaded by then to that file. Filters sit on the few widgets concerned, never on the whole
application, so the probe itself costs next to nothing.
"""

from __future__ import annotations

import os
import sys
import time

from PySide6.QtCore import QEvent, QObject, QTimer


class StartupProbe(QObject):
    def __init__(self, window, *, t0: float, close_when_usable: bool = True):
        super().__init__(window)
        self.window = window
        self.t0 = t0
        self.close_when_usable = close_when_usable
        self.shown_at: float | None = None
        self.cards_at: float | None = None
        self.generate_at: float | None = None
        self._button = None
        window.installEventFilter(self)
        first_card = next(iter(window.services.cards.values()))
        first_card.installEventFilter(self)
        self._card = first_card
        # The Generate tab arrives later in the tab widget's page stack; ChildAdded tells us.
        self._stack = window.tabs.findChild(QObject, "qt_tabwidget_stackedwidget")
        self._stack.installEventFilter(self)
        self._watch_generate_tab()

    def _now(self) -> float:
        return time.time() - self.t0

    def _watch_generate_tab(self) -> None:
        tab = getattr(self.window, "_generate_tab", None)
        if tab is not None and self._button is None:
            self._button = tab.generate_button
            self._button.installEventFilter(self)

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.ChildAdded and obj is self._stack:
            self._watch_generate_tab()
        elif kind == QEvent.Type.Paint:
            if obj is self.window and self.shown_at is None:
                self.shown_at = self._now()
                print("SHOWN", self.shown_at, flush=True)
            elif obj is self._card and self.cards_at is None:
                self.cards_at = self._now()
            elif obj is self._button and self.generate_at is None:
                self.generate_at = self._now()
            if self.cards_at is not None and self.generate_at is not None and obj is not self.window:
                self._report()
        return False

    def _report(self) -> None:
        usable = max(self.cards_at, self.generate_at)
        print("USABLE", usable, flush=True)
        listing = os.environ.get("STUDIO_BENCH_MODULES")
        if listing:  # what start-up had to import; tests check the heavy ones stay out
            with open(listing, "w", encoding="utf-8") as fh:
                fh.write("\n".join(sorted(sys.modules)))
        for w in (self.window, self._card, self._stack, self._button):
            w.removeEventFilter(self)
        if self.close_when_usable:
            QTimer.singleShot(0, self.window.close)


def install_if_asked(window) -> StartupProbe | None:
    if not os.environ.get("STUDIO_BENCH_STARTUP"):
        return None
    return StartupProbe(window, t0=float(os.environ.get("BENCH_T0", "0")))
