"""FilterBar: search box, service/model/date/favourite filters and sort, as one ImageQuery."""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import QDate, QTimer, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDateEdit, QHBoxLayout, QLineEdit, QWidget

from studio_core.storage.records import ImageQuery, service_label

SEARCH_DEBOUNCE_MS = 200
DATE_PRESETS = (("Any time", None), ("Today", 0), ("Last 7 days", 7), ("Last 30 days", 30),
                ("Last 365 days", 365), ("Custom range…", -1))
SORTS = (("Newest first", "newest"), ("Oldest first", "oldest"), ("By prompt", "prompt"))


def _day_start(d: QDate) -> float:
    return datetime(d.year(), d.month(), d.day()).timestamp()


class FilterBar(QWidget):
    query_changed = Signal(object)  # ImageQuery

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search prompts…  (Ctrl+F)")
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName("Search prompts")
        self.search.setMinimumWidth(160)
        lay.addWidget(self.search, 2)
        self.service = self._combo("Service", "Only images from this service")
        self.model = self._combo("Model", "Only images from this model")
        self.model.setMaximumWidth(220)
        # Batch runs' sets; hidden until the gallery has one, so a plain gallery stays plain.
        self.set_filter = self._combo("Set", "Only the images of this batch run")
        self.set_filter.setItemText(0, "Any set")
        self.set_filter.setMaximumWidth(200)
        self.set_filter.setVisible(False)
        self.date = QComboBox()
        self.date.setToolTip("When the images were made")
        self.date.setAccessibleName("Date range")
        for label, _days in DATE_PRESETS:
            self.date.addItem(label)
        self.date_from = QDateEdit(QDate.currentDate().addDays(-7))
        self.date_to = QDateEdit(QDate.currentDate())
        for d, tip in ((self.date_from, "From (inclusive)"), (self.date_to, "To (inclusive)")):
            d.setCalendarPopup(True)
            d.setToolTip(tip)
            d.setAccessibleName(tip)
            d.setVisible(False)
        self.favourites = QCheckBox("★ only")
        self.favourites.setToolTip("Show favourites only")
        self.sort = QComboBox()
        self.sort.setAccessibleName("Sort order")
        self.sort.setToolTip("Sort order")
        for label, _key in SORTS:
            self.sort.addItem(label)
        for w in (self.service, self.model, self.set_filter, self.date, self.date_from, self.date_to, self.favourites,
                  self.sort):
            lay.addWidget(w)

        self._debounce = QTimer(self, singleShot=True, interval=SEARCH_DEBOUNCE_MS)
        self._debounce.timeout.connect(self._emit)
        self.search.textChanged.connect(self._debounce.start)
        self.search.returnPressed.connect(self._emit)
        for combo in (self.service, self.model, self.set_filter, self.sort):
            combo.currentIndexChanged.connect(self._emit)
        self.date.currentIndexChanged.connect(self._on_date_preset)
        self.date_from.dateChanged.connect(self._emit)
        self.date_to.dateChanged.connect(self._emit)
        self.favourites.toggled.connect(self._emit)

    def _combo(self, what: str, tip: str) -> QComboBox:
        c = QComboBox()
        c.setToolTip(tip)
        c.setAccessibleName(what)
        c.addItem(f"Any {what.lower()}", "")
        c.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        return c

    def set_choices(self, services: list[str], models: list[str], *, service_names: dict[str, str] | None = None) -> None:
        """Fill the menus; services read by name ("imported (A1111)", "OpenAI"), keyed by id."""
        for combo, values in ((self.service, services), (self.model, models)):
            current = combo.currentData()
            combo.blockSignals(True)
            while combo.count() > 1:
                combo.removeItem(1)
            for v in values:
                combo.addItem(service_label(v, service_names) if combo is self.service else v, v)
            i = combo.findData(current)
            combo.setCurrentIndex(max(0, i))
            combo.blockSignals(False)

    def set_sets(self, names: list[str]) -> None:
        """The batch sets to offer (newest first); the menu shows once there is one."""
        current = self.set_filter.currentData()
        self.set_filter.blockSignals(True)
        while self.set_filter.count() > 1:
            self.set_filter.removeItem(1)
        for n in names:
            self.set_filter.addItem(n, n)
        self.set_filter.setCurrentIndex(max(0, self.set_filter.findData(current)))
        self.set_filter.blockSignals(False)
        self.set_filter.setVisible(bool(names) or bool(current))

    def show_set(self, name: str) -> None:
        if self.set_filter.findData(name) < 0:
            self.set_filter.addItem(name, name)
        self.set_filter.setVisible(True)
        self.set_filter.setCurrentIndex(self.set_filter.findData(name))

    def _on_date_preset(self) -> None:
        custom = DATE_PRESETS[self.date.currentIndex()][1] == -1
        self.date_from.setVisible(custom)
        self.date_to.setVisible(custom)
        self._emit()

    def query(self) -> ImageQuery:
        since = until = None
        days = DATE_PRESETS[self.date.currentIndex()][1]
        if days == -1:
            since = _day_start(self.date_from.date())
            until = _day_start(self.date_to.date().addDays(1))
        elif days is not None:
            today = datetime.now().replace(hour=0, minute=0, second=0, microsecond=0)
            since = (today - timedelta(days=days)).timestamp() if days else today.timestamp()
        return ImageQuery(
            text=self.search.text().strip(), service=self.service.currentData() or "",
            model=self.model.currentData() or "", since_ts=since, until_ts=until,
            favourites_only=self.favourites.isChecked(), sort=SORTS[self.sort.currentIndex()][1],
            set_name=self.set_filter.currentData() or "",
        )

    def is_default(self) -> bool:
        return self.query() == ImageQuery()

    def is_filtering(self) -> bool:
        """Whether anything narrows the results (the sort order does not)."""
        return self.query().replace(sort="newest") != ImageQuery()

    def active_filters(self) -> list[str]:
        """The narrowing choices other than the search text, in the words of their menus."""
        out = [c.currentText() for c in (self.service, self.model) if c.currentData()]
        if self.set_filter.currentData():
            out.append(f"set '{self.set_filter.currentText()}'")
        if self.date.currentIndex() > 0:
            if DATE_PRESETS[self.date.currentIndex()][1] == -1:
                out.append(f"{self.date_from.date().toString('yyyy-MM-dd')} to {self.date_to.date().toString('yyyy-MM-dd')}")
            else:
                out.append(self.date.currentText())
        if self.favourites.isChecked():
            out.append("favourites only")
        return out

    def clear_search(self) -> None:
        self.search.clear()
        self._emit()

    def clear_filters(self) -> None:
        """Back to every image (the search text stays: it is what the user typed last)."""
        for w in (self.service, self.model, self.set_filter, self.date, self.favourites):
            w.blockSignals(True)
        self.service.setCurrentIndex(0)
        self.model.setCurrentIndex(0)
        self.set_filter.setCurrentIndex(0)
        self.date.setCurrentIndex(0)
        self.date_from.setVisible(False)
        self.date_to.setVisible(False)
        self.favourites.setChecked(False)
        for w in (self.service, self.model, self.set_filter, self.date, self.favourites):
            w.blockSignals(False)
        self._emit()

    def _emit(self) -> None:
        self._debounce.stop()
        self.query_changed.emit(self.query())
