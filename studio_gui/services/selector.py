"""Service selector (the seed's CloudServiceSelector): one small card per service.

Seven services, so plain widgets rather than a model/view. Status checks run as
background tasks (at start, on the refresh button, after a service's settings are
saved) and never block the window. Clicking a ready card selects it and persists
``selected_service``; clicking one that needs setup opens its settings page instead.
"""

from __future__ import annotations

import asyncio
import logging

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QToolButton, QVBoxLayout, QWidget

from studio_core.models import ProviderStatus, ServiceState
from studio_gui.services.card import NOT_INSTALLED_STATE, ServiceCard
from studio_gui.services.checks import check_service, setup_gap
from studio_gui.services.events import events_for
from studio_gui.services.facts import ServiceFacts, capability_line, format_price, load_catalog, model_in_use

log = logging.getLogger(__name__)

_CARD_STYLE = """
QFrame#ServiceCard { border: 1px solid palette(mid); border-radius: 6px; background: palette(base); }
QFrame#ServiceCard:focus { border: 1px solid palette(highlight); }
QFrame#ServiceCard[selected="true"] { border: 2px solid palette(highlight); }
"""


class ServiceSelector(QWidget):
    service_changed = Signal(str)

    def __init__(self, core, *, tasks, parent=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.setObjectName("ServiceSelector")
        self._facts: dict[str, ServiceFacts] = {}
        self._checks: dict[str, asyncio.Task] = {}
        self._pending_select: str | None = None
        self._dialog = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        head = QHBoxLayout()
        title = QLabel("<b>SERVICES</b>")
        head.addWidget(title)
        head.addStretch(1)
        self.refresh_button = QToolButton()
        self.refresh_button.setText("↻")
        self.refresh_button.setToolTip("Check every service again")
        self.refresh_button.setAccessibleName("Check services again")
        self.refresh_button.clicked.connect(self.refresh)
        head.addWidget(self.refresh_button)
        lay.addLayout(head)

        body = QWidget()
        body.setObjectName("ServiceCards")
        col = QVBoxLayout(body)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(6)
        self.cards: dict[str, ServiceCard] = {}
        for info in core.services.all():
            card = ServiceCard(info.id, info.name)
            card.activated.connect(self._on_card_activated)
            col.addWidget(card)
            self.cards[info.id] = card
        col.addStretch(1)
        body.setStyleSheet(_CARD_STYLE)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        lay.addWidget(scroll, 1)

        self._last_settings = core.settings.current
        hub = events_for(core)  # the core's bridge: Qt drops these connections with this widget
        hub.settings_changed.connect(self._on_settings_changed)
        hub.status_checked.connect(self._on_status_checked)
        hub.config_saved.connect(self.check)
        self._show_facts()
        self._show_selection()

    def preferred_width(self) -> int:
        """A column width that shows every card's title whole (the main window's default)."""
        titles = max((c.title.sizeHint().width() for c in self.cards.values()), default=0)
        card = next(iter(self.cards.values()), None)
        dot = card.dot.sizeHint().width() if card is not None else 12
        scrollbar = self.style().pixelMetric(self.style().PixelMetric.PM_ScrollBarExtent)
        # lay margins (6+6) + card margins (8+8) + grid spacing (6) + frame (2) + scrollbar
        return titles + dot + 36 + scrollbar

    # -- lifecycle --------------------------------------------------------------------
    async def started(self) -> None:
        """Load prices off the GUI thread, then check the services in the background."""
        self._facts = await asyncio.to_thread(load_catalog)
        self._show_facts()
        self.tasks.spawn(self._initial_checks(), name="initial service checks")

    async def _initial_checks(self) -> None:
        """Check what can be used without loading every cloud SDK at once.

        A cloud service with no key anywhere is marked "needs key" from the secrets store
        alone; the others are checked one after another, the selected one first, because
        importing the SDKs (openai, google-genai: a second or more each) in parallel
        would hold the interpreter long enough to make the fresh window stutter.
        """
        from studio_core.services import SERVICES, ambient_credentials

        def key_sources() -> tuple[dict[str, str | None], set[str]]:
            return ({s.id: self.core.secrets.source(s.secret_name) for s in SERVICES if s.secret_name},
                    ambient_credentials())

        sources, ambient = await asyncio.to_thread(key_sources)
        selected = self.core.settings.current.selected_service
        order = sorted(self.cards, key=lambda sid: (sid != "comfyui", sid != selected))
        for sid in order:
            if sid in sources:
                # The same rule as every later check (check_service), so a refresh agrees with the start.
                gap = setup_gap(sid, self.core.settings.current.provider(sid), key_source=sources[sid],
                                ambient=sid in ambient)
                if gap is not None:
                    self._apply_status(sid, gap)
                    continue
            self.check(sid)
            task = self._checks.get(sid)
            if task is not None:
                # Long enough for the SDK import; a slow server must not hold up the next card.
                await asyncio.wait([task], timeout=1.0)

    def closing(self) -> None:
        for task in self._checks.values():
            task.cancel()

    # -- checks -----------------------------------------------------------------------
    def refresh(self) -> None:
        for sid in self.cards:
            self.check(sid)

    def check(self, service_id: str) -> None:
        card = self.cards.get(service_id)
        if card is None:
            return
        old = self._checks.pop(service_id, None)
        if old is not None:
            old.cancel()
        card.set_status(card.status, checking=True)
        self._checks[service_id] = self.tasks.spawn(self._check(service_id), name=f"check {service_id}")

    async def _check(self, service_id: str) -> None:
        try:
            status = await check_service(self.core, service_id)
        finally:
            if self._checks.get(service_id) is asyncio.current_task():
                del self._checks[service_id]
        self._apply_status(service_id, status)

    def _on_status_checked(self, service_id: str, status: object) -> None:
        if isinstance(status, ProviderStatus):
            task = self._checks.pop(service_id, None)
            if task is not None:
                task.cancel()
            self._apply_status(service_id, status)

    def _apply_status(self, service_id: str, status: ProviderStatus) -> None:
        card = self.cards.get(service_id)
        # Reached after a check's await, when the window may have deleted its cards.
        if card is None or not shiboken6.isValid(card):
            return
        card.set_status(status)
        events_for(self.core).set_status(service_id, status)
        if self._pending_select == service_id and status.state == ServiceState.ready:
            self._pending_select = None
            self.select(service_id)

    def status(self, service_id: str) -> ProviderStatus | None:
        card = self.cards.get(service_id)
        return card.status if card else None

    # -- selection --------------------------------------------------------------------
    @property
    def selected(self) -> str:
        return self.core.settings.current.selected_service

    def _on_card_activated(self, service_id: str) -> None:
        card = self.cards[service_id]
        # A missing key, a bad endpoint or a rejected key is fixed in Settings, so go there instead of
        # selecting a service that cannot work. "Unreachable" may be a passing network problem: select it.
        if card.needs_setup:
            # Remember the wish: once the setup is saved and the check passes, it becomes the choice.
            self._pending_select = service_id if card.state != NOT_INSTALLED_STATE else None
            self.open_setup(service_id)
            return
        self.select(service_id)

    def select(self, service_id: str) -> None:
        if service_id not in self.cards:
            return
        if self.selected != service_id:
            self.core.settings.update(selected_service=service_id)
        else:
            self._show_selection()

    def open_setup(self, service_id: str) -> None:
        from studio_gui.settings_dialog import SettingsDialog

        page = "ComfyUI server" if service_id == "comfyui" else "Services"  # titles as in settings_dialog.PAGES
        dlg = SettingsDialog(self.core, tasks=self.tasks, parent=self.window(), page=page, provider=service_id)
        self._dialog = dlg
        dlg.open()

    # -- display ----------------------------------------------------------------------
    def _on_settings_changed(self, new, _changed: object = frozenset()) -> None:
        old, self._last_settings = self._last_settings, new
        self._show_facts()
        if old.selected_service != new.selected_service:
            self._show_selection()
            self.service_changed.emit(new.selected_service)
        for sid in self.cards:
            if sid == "comfyui":
                changed = old.comfy_active_url != new.comfy_active_url
            else:
                changed = old.provider(sid) != new.provider(sid)
            if changed:
                self.check(sid)

    def _show_selection(self) -> None:
        chosen = self.selected
        for sid, card in self.cards.items():
            card.set_selected(sid == chosen)

    def _show_facts(self) -> None:
        settings = self.core.settings.current
        for info in self.core.services.all():
            card = self.cards[info.id]
            facts = self._facts.get(info.id)
            model = model_in_use(info.id, settings, facts)
            mfacts = facts.model(model) if facts else None
            if info.kind == "local":
                price = "free"
            else:
                price = format_price(mfacts.price if mfacts else None)
            shown = (mfacts.label if mfacts and mfacts.label else model)
            if info.kind == "local":
                shown = shown.rsplit(".", 1)[0] if shown.endswith((".safetensors", ".ckpt")) else shown
            card.set_facts(price=price, caps=capability_line(kind=info.kind, model=mfacts), model=shown, model_id=model)
            card.set_status(card.status, checking=card.state == "checking")
