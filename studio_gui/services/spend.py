"""Status-bar spend: estimated cloud spend today and this month, per provider in the tooltip.

Fed by ``core.index.spend_summary()`` (the gallery index sums the ``cost_usd`` recorded by
each image this install generated; imported images are left out) and refreshed after every
saved image. Without an index it says nothing rather than a wrong zero.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import shiboken6
from PySide6.QtWidgets import QLabel

log = logging.getLogger(__name__)


def _money(v: float) -> str:
    return f"${v:.2f}" if v >= 0.01 or v == 0 else f"${v:.4f}".rstrip("0")


def spend_lines(summary: Any, names: dict[str, str], *, now: float | None = None) -> tuple[str, str]:
    """(status text, tooltip) from a SpendSummary-like object; tolerant of missing fields."""
    today_key = time.strftime("%Y-%m-%d", time.gmtime(time.time() if now is None else now))
    month_key = today_key[:7]
    today = float(getattr(summary, "today", 0.0) or 0.0)
    month = float(getattr(summary, "this_month", 0.0) or 0.0)
    per: dict[str, list[float]] = {}
    for prov, day, usd in getattr(summary, "per_day", ()) or ():
        if day == today_key:
            per.setdefault(prov, [0.0, 0.0])[0] += float(usd or 0)
    for prov, mon, usd in getattr(summary, "per_month", ()) or ():
        if mon == month_key:
            per.setdefault(prov, [0.0, 0.0])[1] += float(usd or 0)
    text = f"spend today {_money(today)} · month {_money(month)}"
    if not per:
        tip = "Estimated cloud spend (UTC days). Nothing spent this month."
    else:
        rows = [f"{names.get(p, p)}: today {_money(d)}, this month {_money(m)}"
                for p, (d, m) in sorted(per.items(), key=lambda kv: -kv[1][1])]
        tip = "Estimated cloud spend (UTC days; your provider's bill is what counts):\n" + "\n".join(rows)
    # Imported images keep the cost their maker recorded; saying so explains a gallery
    # full of priced images next to a small figure here.
    tip += "\nOnly images generated with this app count; imported images do not."
    return text, tip


class SpendLabel(QLabel):
    def __init__(self, core, *, tasks, parent=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.setObjectName("SpendLabel")
        self.setAccessibleName("Cloud spend")
        self.setText("")
        self._names = {s.id: s.name for s in core.services.all()}
        self._busy = False
        self._again = False
        from studio_gui.bridge import bridge_for

        # Through the core's bridge: Qt drops the connection with this label.
        bridge_for(core).image_saved.connect(self._on_image_saved)

    async def started(self) -> None:
        await self.refresh()

    def _on_image_saved(self, _saved) -> None:
        # Not awaited inline: saving an image should not wait on the spend query.
        self.tasks.spawn(self.refresh(), name="spend refresh")

    async def refresh(self) -> None:
        index = getattr(self.core, "index", None)
        summarize = getattr(index, "spend_summary", None)
        if summarize is None:
            self.setVisible(False)
            return
        if self._busy:
            self._again = True
            return
        self._busy = True
        try:
            while True:
                self._again = False
                try:
                    summary = await summarize()
                except Exception as exc:  # spend is a nicety; never an error dialog
                    log.warning("spend summary failed: %s", exc)
                    return
                if not shiboken6.isValid(self):  # the window may have closed during the query
                    return
                text, tip = spend_lines(summary, self._names)
                self.setText(text)
                self.setToolTip(tip)
                self.setVisible(True)
                if not self._again:
                    return
        finally:
            self._busy = False
