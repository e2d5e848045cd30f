"""Settings → Services: a list of cloud providers and one page per provider.

A page holds the key (stored through ``core.secrets``, never shown back: only "•••• last4"),
the provider's fields (saved with ``core.settings``), inline validation, and a "Test
connection" button that runs the provider's ``check()`` and says the result in words.
Keyring and file access go through ``asyncio.to_thread``: some keyrings talk D-Bus.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QScrollArea,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio_core.errors import StudioError
from studio_core.models import ProviderStatus
from studio_core.secrets import ENV_VARS
from studio_core.services import ServiceInfo
from studio_gui.services.checks import check_service
from studio_gui.services.events import events_for
from studio_gui.services.facts import ServiceFacts, load_catalog
from studio_gui.services.page_parts import (
    BAD_COLOUR,
    OK_COLOUR,
    WARN_COLOUR,
    block,
    describe_test,
    help_label,
    label_for,
    lower_first,
    module_problem,
    save_provider_values,
    small,
    status_icon,
)
from studio_gui.services.provider_fields import FieldSpec, check_field, check_key, form_for, mask, typed_values

log = logging.getLogger(__name__)


class ProviderPage(QWidget):
    """One provider's settings. ``save()`` and ``test_connection()`` are coroutines the buttons spawn."""

    saved = Signal(str)

    def __init__(self, core, info: ServiceInfo, *, tasks, facts: ServiceFacts | None = None, parent=None):
        super().__init__(parent)
        self.core = core
        self.info = info
        self.tasks = tasks
        self.form_spec = form_for(info.id)
        self.setObjectName(f"ProviderPage_{info.id}")
        self.last_status: ProviderStatus | None = None
        self._key_source: str | None = None

        outer = QVBoxLayout(self)
        title = QLabel(f"<b>{info.name}</b>")
        outer.addWidget(title)
        if info.description:
            outer.addWidget(small(QLabel(info.description)))
        self.banner = small(QLabel(""), colour=BAD_COLOUR)
        self.banner.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner.hide()
        outer.addWidget(self.banner)

        form = QFormLayout()
        # AllNonFixedFieldsGrow: wrapped help labels and combo boxes take the full width, not a sliver
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        # -- key
        ks = self.form_spec.key
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(ks.placeholder)
        self.key_edit.setAccessibleName(ks.label)
        self.key_edit.setToolTip(ks.help)
        self.key_edit.textEdited.connect(lambda _t: self._clear_messages("__key__"))
        self.remove_key_button = QPushButton("Remove stored key")
        self.remove_key_button.setToolTip("Delete the key saved for this service (environment variables stay)")
        self.remove_key_button.clicked.connect(lambda: self.tasks.spawn(self.remove_key()))
        self.remove_key_button.hide()
        key_row = QHBoxLayout()
        key_row.addWidget(self.key_edit, 1)
        key_row.addWidget(self.remove_key_button)
        self.key_source_label = small(QLabel("Looking for a key…"))
        self.key_message = small(QLabel(""))
        self.key_message.hide()
        form.addRow(label_for(ks.label, self.key_edit),
                    block(key_row, self.key_source_label, self.key_message, help_label(ks.help)))

        # -- provider fields
        self.inputs: dict[str, QLineEdit | QComboBox] = {}
        self.messages: dict[str, QLabel] = {}
        values = core.settings.current.provider(info.id)
        for spec in self.form_spec.fields:
            widget = self._make_input(spec, values.get(spec.key, ""))
            self.inputs[spec.key] = widget
            msg = small(QLabel(""))
            msg.hide()
            self.messages[spec.key] = msg
            form.addRow(label_for(spec.label, widget), block(widget, msg, help_label(spec.help)))
        outer.addLayout(form)

        self.store_label = small(QLabel(""))
        self.store_label.setObjectName("key_store")
        outer.addWidget(self.store_label)

        buttons = QHBoxLayout()
        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Check and save these settings")
        self.save_button.clicked.connect(lambda: self.tasks.spawn(self.save()))
        self.test_button = QPushButton("Test connection")
        self.test_button.setToolTip("Save, then make the cheapest call the service offers and report what it says")
        self.test_button.clicked.connect(lambda: self.tasks.spawn(self.test_connection()))
        buttons.addWidget(self.save_button)
        buttons.addWidget(self.test_button)
        buttons.addStretch(1)
        outer.addLayout(buttons)
        self.result_label = QLabel("")
        self.result_label.setObjectName("test_result")
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        outer.addWidget(self.result_label)
        outer.addStretch(1)
        self.set_facts(facts)

    # -- building -----------------------------------------------------------------------
    def _make_input(self, spec: FieldSpec, value: object) -> QLineEdit | QComboBox:
        text = value if isinstance(value, str) else ("" if value is None else str(value))
        if spec.kind in ("choice", "model"):
            box = QComboBox()
            box.setEditable(spec.kind == "model" or spec.editable)
            for v, label in spec.choices:
                box.addItem(label, v)
            if box.isEditable():
                box.lineEdit().setPlaceholderText(spec.placeholder)
                box.lineEdit().textEdited.connect(lambda _t, k=spec.key: self._clear_messages(k))
            box.currentIndexChanged.connect(lambda _i, k=spec.key: self._clear_messages(k))
            self._set_combo(box, text)
            w: QLineEdit | QComboBox = box
        else:
            w = QLineEdit(text)
            w.setPlaceholderText(spec.placeholder)
            w.textEdited.connect(lambda _t, k=spec.key: self._clear_messages(k))
        w.setAccessibleName(spec.label)
        if spec.help:
            w.setToolTip(spec.help)
        return w

    @staticmethod
    def _set_combo(box: QComboBox, text: str) -> None:
        i = box.findData(text) if text else -1
        if i < 0 and text:
            i = box.findText(text)
        if i >= 0:
            box.setCurrentIndex(i)
        elif box.isEditable():
            box.setCurrentIndex(-1)
            box.setEditText(text)

    def set_facts(self, facts: ServiceFacts | None) -> None:
        """Fill the model list from the catalog; the user may still type any id."""
        timeout = self.inputs.get("timeout_s")
        default_s = facts.extra.get("timeout_s") if facts else None
        if isinstance(timeout, QLineEdit) and isinstance(default_s, (int, float)) and not isinstance(default_s, bool):
            timeout.setPlaceholderText(f"default: {default_s:g}")
        box = self.inputs.get("model")
        if not isinstance(box, QComboBox):
            return
        current = self._value("model")
        box.blockSignals(True)
        box.clear()
        if facts:
            for m in facts.models:
                label = m.label or m.id
                if m.retired:
                    label += " (retired)"
                box.addItem(label if label == m.id else f"{label} — {m.id}", m.id)
            if facts.default_model:
                box.lineEdit().setPlaceholderText(f"default: {facts.default_model}")
        self._set_combo(box, current)
        box.blockSignals(False)

    # -- reading the form ----------------------------------------------------------------
    def _value(self, key: str) -> str:
        w = self.inputs[key]
        if isinstance(w, QLineEdit):
            return w.text()
        text = w.currentText()
        i = w.currentIndex()
        if i >= 0 and w.itemText(i) == text and w.itemData(i) is not None:
            return str(w.itemData(i))
        return text

    def values(self) -> dict[str, str]:
        return {k: self._value(k) for k in self.inputs}

    def _clear_messages(self, key: str) -> None:
        label = self.key_message if key == "__key__" else self.messages.get(key)
        if label is not None:
            label.hide()

    def _show_message(self, label: QLabel, text: str, colour: str) -> None:
        label.setText(text)
        label.setStyleSheet(f"color: {colour};")
        label.setVisible(bool(text))

    def validate(self) -> tuple[dict[str, str], str | None, bool]:
        """(field values, key to store or None, ok). Shows every problem in place."""
        raw = self.values()
        stripped = {k: v.strip() for k, v in raw.items()}
        ok = True
        out: dict[str, str] = {}
        for spec in self.form_spec.fields:
            res = check_field(raw[spec.key], spec, values=stripped)
            out[spec.key] = res.value
            if res.error:
                ok = False
                self._show_message(self.messages[spec.key], res.error, BAD_COLOUR)
            else:
                self._show_message(self.messages[spec.key], res.note, WARN_COLOUR)
        ks = self.form_spec.key
        res = check_key(self.key_edit.text(), ks, name=self.info.name)
        key_needed = self._key_needed(stripped)
        if res.error:
            ok = False
            self._show_message(self.key_message, res.error, BAD_COLOUR)
        elif not res.value and key_needed and self._key_source is None:
            ok = False
            self._show_message(self.key_message, f"Paste the {lower_first(ks.label)} first; {self.info.name} needs one.",
                               BAD_COLOUR)
        else:
            self._show_message(self.key_message, res.note, WARN_COLOUR)
        return out, (res.value or None), ok

    def _key_needed(self, values: dict[str, str]) -> bool:
        ks = self.form_spec.key
        return ks.required or (ks.required_when is not None and values.get(ks.required_when[0], "") == ks.required_when[1])

    @property
    def dirty(self) -> bool:
        if self.key_edit.text().strip():
            return True
        stored = self.core.settings.current.provider(self.info.id)
        return any(v.strip() != ("" if stored.get(k) is None else str(stored[k])) for k, v in self.values().items())

    # -- actions ------------------------------------------------------------------------
    async def started(self) -> None:
        problem = await asyncio.to_thread(module_problem, self.info)
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return
        self.banner.setText(problem)
        self.banner.setVisible(bool(problem))
        await self.refresh_key_info()

    async def refresh_key_info(self) -> None:
        secrets = self.core.secrets
        name = self.info.secret_name

        def read() -> tuple[str | None, str | None, str]:
            source = secrets.source(name) if name else None
            key = secrets.get(name) if source else None
            return source, key, secrets.info().description

        source, key, store = await asyncio.to_thread(read)
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return
        self._key_source = source
        shown = mask(key)
        if source == "stored":
            text = f"Using the stored key ({shown})."
            self.key_edit.setPlaceholderText(f"{shown} (stored) — paste a new key to replace it")
        elif source and source.startswith("env:"):
            var = source.split(":", 1)[1]
            text = f"Using the environment variable {var} ({shown}). A key saved here takes its place."
            self.key_edit.setPlaceholderText(f"{shown} (from {var})")
        else:
            envs = " or ".join(ENV_VARS.get(name, ()))
            if self._key_needed({k: v.strip() for k, v in self.values().items()}):
                text = "No key yet." + (f" Paste one here, or set {envs}." if envs else "")
            else:
                text = "No key saved; that is fine when you sign in another way (see below)."
            self.key_edit.setPlaceholderText(self.form_spec.key.placeholder)
        self.key_source_label.setText(text)
        self.remove_key_button.setVisible(source == "stored")
        self.store_label.setText(store)

    async def save(self) -> bool:
        values, key, ok = self.validate()
        if not ok:
            self._show_result("Not saved: fix the fields marked in red.", BAD_COLOUR)
            return False
        self.save_button.setEnabled(False)
        try:
            if key:
                await asyncio.to_thread(self.core.secrets.set, self.info.secret_name, key)
                self.key_edit.clear()
            save_provider_values(self.core, self.info.id, typed_values(self.form_spec, values))
            await self.refresh_key_info()
        except StudioError as exc:
            self._show_result(f"Not saved: {exc.user_message}", BAD_COLOUR)
            return False
        except Exception as exc:  # a keyring backend can fail in many ways; say so in place, never show the key
            log.warning("saving %s settings failed: %s", self.info.id, type(exc).__name__)
            self._show_result(f"Not saved: the key store refused the key ({type(exc).__name__}). "
                              "See the log for details.", BAD_COLOUR)
            return False
        finally:
            if shiboken6.isValid(self):  # after the await the page may be gone
                self.save_button.setEnabled(True)
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return True
        note = self.key_message.text()
        self._show_result(f"Saved. {note}".strip(), WARN_COLOUR if note else OK_COLOUR)
        self.saved.emit(self.info.id)
        events_for(self.core).config_saved.emit(self.info.id)
        return True

    async def remove_key(self) -> None:
        await asyncio.to_thread(self.core.secrets.delete, self.info.secret_name)
        self.core.services.invalidate(self.info.id)
        await self.refresh_key_info()
        if shiboken6.isValid(self):  # after the await the page may be gone
            self._show_result("The stored key was removed.", OK_COLOUR)
            events_for(self.core).config_saved.emit(self.info.id)

    async def test_connection(self) -> ProviderStatus | None:
        if self.dirty and not await self.save():
            return None
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return None
        self.test_button.setEnabled(False)
        self._show_result("Testing the connection…", "")
        try:
            status = await check_service(self.core, self.info.id)
        finally:
            if shiboken6.isValid(self):  # after the await the page may be gone
                self.test_button.setEnabled(True)
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return status
        self.last_status = status
        self._show_result(*describe_test(self.info.name, status))
        events_for(self.core).status_checked.emit(self.info.id, status)
        return status

    def _show_result(self, text: str, colour: str) -> None:
        self.result_label.setText(text)
        self.result_label.setStyleSheet(f"color: {colour};" if colour else "")


class ServicesPage(QWidget):
    """Settings page "Services": the cloud providers on the left, the chosen one's page on the right."""

    def __init__(self, core, *, tasks, parent=None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.setObjectName("ServicesPage")
        self.list = QListWidget()
        self.list.setAccessibleName("Cloud services")
        self.stack = QStackedWidget()
        # Each provider's page is built when first shown (or asked for): building all six
        # at once held the GUI thread for ~100 ms when Settings opened.
        self._infos = {info.id: info for info in core.services.all() if info.kind == "cloud"}
        self._built: dict[str, ProviderPage] = {}
        self._facts: dict[str, ServiceFacts] | None = None  # the catalog, once _load read it
        self.pages: Mapping[str, ProviderPage] = _LazyPages(self)
        for info in self._infos.values():
            self.stack.addWidget(QWidget())  # its page's place in the stack
            item = QListWidgetItem(info.name)
            item.setData(Qt.ItemDataRole.UserRole, info.id)
            self.list.addItem(item)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.list.currentRowChanged.connect(self._show_row)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.list)
        split.addWidget(self.stack)
        split.setStretchFactor(1, 1)
        split.setSizes([200, 560])
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(split)
        self.list.setCurrentRow(0)
        hub = events_for(core)
        for sid, status in hub.last.items():
            self._on_status(sid, status)
        hub.status_updated.connect(self._on_status)
        self._load_task = tasks.spawn(self._load(), name="services page")

    def _on_status(self, service_id: str, status: object) -> None:
        if not isinstance(status, ProviderStatus):  # a slot of the bridge: Qt disconnects it with this page
            return
        ids = list(self.pages)
        if service_id in ids:
            item = self.list.item(ids.index(service_id))
            item.setIcon(status_icon(status))
            item.setToolTip(f"{item.text()}: {status.message}" if status.message else item.text())

    def _show_row(self, row: int) -> None:
        if 0 <= row < len(self._infos):
            self.page(list(self._infos)[row])
        self.stack.setCurrentIndex(row)

    def _build_page(self, service_id: str) -> ProviderPage:
        page = ProviderPage(self.core, self._infos[service_id], tasks=self.tasks)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(page)
        index = list(self._infos).index(service_id)
        current = self.stack.currentIndex()
        slot = self.stack.widget(index)
        self.stack.insertWidget(index, scroll)
        self.stack.removeWidget(slot)
        slot.deleteLater()
        self.stack.setCurrentIndex(current)
        self._built[service_id] = page
        if self._facts is not None:  # built after the catalog was read: start it on its own
            page.set_facts(self._facts.get(service_id))
            self.tasks.spawn(page.started(), name=f"{service_id} settings page")
        return page

    async def _load(self) -> None:
        facts = await asyncio.to_thread(load_catalog)
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return
        self._facts = facts
        built = list(self._built.items())
        for sid, page in built:
            page.set_facts(facts.get(sid))
        await asyncio.gather(*(p.started() for _sid, p in built))

    def show_provider(self, service_id: str) -> bool:
        ids = list(self.pages)
        if service_id not in ids:
            return False
        self.list.setCurrentRow(ids.index(service_id))
        self.pages[service_id].key_edit.setFocus()
        return True

    def page(self, service_id: str) -> ProviderPage:
        page = self._built.get(service_id)
        return page if page is not None else self._build_page(service_id)


class _LazyPages(Mapping):
    """Service id → its ProviderPage, in list order; looking one up builds it."""

    def __init__(self, owner: ServicesPage):
        self._owner = owner

    def __getitem__(self, service_id: str) -> ProviderPage:
        if service_id not in self._owner._infos:
            raise KeyError(service_id)
        return self._owner.page(service_id)

    def __iter__(self):
        return iter(self._owner._infos)

    def __len__(self) -> int:
        return len(self._owner._infos)
