"""Settings page "ComfyUI servers": the pool's list, in the order jobs try them.

Each row shows the entry and its last polled state (from ``PoolStateChanged``). Add, Edit,
Remove and the arrows change the list at once (Settings rebuilds the pool). "my PC" is the
address of the "ComfyUI server" page; the server the app started is shown but not editable.
"""

from __future__ import annotations

import asyncio

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QVBoxLayout, QWidget)

from studio_core.pool.server_list import MANAGED_ID, MY_PC_ID, entries_to_settings, new_id, pool_entries, stored_specs
from studio_core.pool.servers import ServerKind, ServerSpec
from studio_gui.bridge import bridge_for
from studio_gui.servers.editor import ServerEditor
from studio_gui.tasks import TaskOwner

STATE_MARK = {"running": "●", "idle": "○", "offline": "✕", "error": "⚠", "unknown": "…"}


def describe_entry(spec: ServerSpec, state=None) -> str:
    kind = "RunPod" if spec.kind is ServerKind.runpod else ""
    flags = [w for w, on in (("off", not spec.enabled), ("paid overflow", spec.paid), ("may be off", spec.may_be_off),
                             ("token", spec.uses_auth or bool(spec.token_param)),
                             ("trusted certificate", bool(spec.trusted_cert_sha256))) if on]
    head = f"{spec.name} — {spec.url}" + (f" ({kind})" if kind else "")
    line = head + (f"   [{', '.join(flags)}]" if flags else "")
    if state is None:
        return line
    mark = STATE_MARK.get(state.state, "…")
    bits = [state.state]
    if state.state == "running":
        bits.append(f"{state.queue_length} in queue")
        if state.vram_total:
            bits.append(f"{(state.vram_free or 0) / 2**30:.1f} of {state.vram_total / 2**30:.1f} GB free")
        if state.current_job:
            bits.append("working")
    elif state.message:
        bits.append(state.message)
    return f"{mark} {line}\n    {' · '.join(bits)}"


class ServersPage(QWidget):
    def __init__(self, core, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self.states: dict[str, object] = {}
        lay = QVBoxLayout(self)
        intro = QLabel("Jobs go to the first server in this list that has the model and a free slot; the rest take "
                       "over when it is busy or goes away. Keep ComfyUI on your LAN, a VPN or behind a proxy with "
                       "a token — never open its port to the internet.")
        intro.setWordWrap(True)
        lay.addWidget(intro)
        row = QHBoxLayout()
        self.list = QListWidget()
        self.list.setAccessibleName("ComfyUI servers")
        self.list.setWordWrap(True)  # a down server's reason is a sentence
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.itemDoubleClicked.connect(lambda _i: self._on_edit())
        self.list.itemChanged.connect(self._on_item_changed)
        self.list.currentRowChanged.connect(lambda _r: self._update_buttons())
        row.addWidget(self.list, 1)
        col = QVBoxLayout()
        self.add_button = QPushButton("Add…")
        self.edit_button = QPushButton("Edit…")
        self.remove_button = QPushButton("Remove")
        self.up_button = QPushButton("Move up")
        self.down_button = QPushButton("Move down")
        self.find_button = QPushButton("Find local servers")
        self.find_button.setToolTip("Look for ComfyUI on this computer: ports 8188 and 8000, and the app's own server.")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Ask every server again what it can run (models and nodes) and how it is.")
        for b, slot in ((self.add_button, self._on_add), (self.edit_button, self._on_edit),
                        (self.remove_button, self._on_remove), (self.up_button, lambda: self._move(-1)),
                        (self.down_button, lambda: self._move(1)), (self.find_button, self._on_find),
                        (self.refresh_button, self._on_refresh)):
            b.clicked.connect(slot)
            col.addWidget(b)
        col.addStretch(1)
        row.addLayout(col)
        lay.addLayout(row, 1)
        self.allow_paid = QCheckBox("Use paid endpoints (RunPod) when my own servers are busy or lack the model")
        self.allow_paid.setChecked(core.settings.current.pool_allow_paid)
        self.allow_paid.toggled.connect(lambda on: core.settings.update(pool_allow_paid=on))
        lay.addWidget(self.allow_paid)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Servers note")
        lay.addWidget(self.note)
        self.problems = QLabel()
        self.problems.setWordWrap(True)
        self.problems.setStyleSheet("color: #d0312d;")
        lay.addWidget(self.problems)
        bridge = bridge_for(core)
        bridge.pool_state.connect(self._on_pool_state)
        bridge.settings_changed.connect(self._on_settings_changed)
        self.reload()
        self.tasks.spawn(self._first_states(), name="servers page states")

    # ---- the list -----------------------------------------------------------------------
    def entries(self) -> list[ServerSpec]:
        return list(pool_entries(self.core.settings.current))

    def reload(self) -> None:
        if not shiboken6.isValid(self):  # also reached from the states task after its await
            return
        current = self.list.currentRow()
        self.list.blockSignals(True)
        self.list.clear()
        for spec in self.entries():
            item = QListWidgetItem(describe_entry(spec, self.states.get(spec.id)))
            item.setData(Qt.ItemDataRole.UserRole, spec.id)
            if spec.id != MANAGED_ID:
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if spec.enabled else Qt.CheckState.Unchecked)
            else:
                item.setToolTip("The server the app started; it is used while it runs and never saved.")
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.list.setCurrentRow(min(max(current, 0), self.list.count() - 1))
        _specs, problems = stored_specs(self.core.settings.current)
        self.problems.setText("\n".join(problems))
        self.problems.setVisible(bool(problems))
        self._update_buttons()

    def _selected(self) -> ServerSpec | None:
        item = self.list.currentItem()
        if item is None:
            return None
        sid = item.data(Qt.ItemDataRole.UserRole)
        return next((s for s in self.entries() if s.id == sid), None)

    def _update_buttons(self) -> None:
        spec = self._selected()
        editable = spec is not None and spec.id != MANAGED_ID
        self.edit_button.setEnabled(editable)
        self.remove_button.setEnabled(editable)
        row = self.list.currentRow()
        self.up_button.setEnabled(editable and row > 0)
        self.down_button.setEnabled(editable and row < self.list.count() - 1)

    def save(self, specs: list[ServerSpec], *, my_pc_url: str | None = None) -> None:
        self.core.settings.update(**entries_to_settings(specs, my_pc_url=my_pc_url))
        self.reload()

    def _on_item_changed(self, item: QListWidgetItem) -> None:
        sid = item.data(Qt.ItemDataRole.UserRole)
        on = item.checkState() == Qt.CheckState.Checked
        specs = [s.replace(enabled=on) if s.id == sid else s for s in self.entries()]
        self.save(specs)

    def _move(self, step: int) -> None:
        specs = [s for s in self.entries() if s.id != MANAGED_ID]
        spec = self._selected()
        if spec is None or spec.id == MANAGED_ID:
            return
        i = next(n for n, s in enumerate(specs) if s.id == spec.id)
        j = i + step
        if 0 <= j < len(specs):
            specs[i], specs[j] = specs[j], specs[i]
            self.save(specs)
            self.list.setCurrentRow(next(n for n, s in enumerate(self.entries()) if s.id == spec.id))

    def _on_remove(self) -> None:
        spec = self._selected()
        if spec is None or spec.id == MANAGED_ID:
            return
        self.save([s for s in self.entries() if s.id != spec.id])
        self.tasks.spawn(self._forget_secrets(spec), name="forget server secrets")

    async def _forget_secrets(self, spec: ServerSpec) -> None:
        for which in ("auth", "token"):
            await asyncio.to_thread(self.core.secrets.delete, spec.secret_name(which))

    # ---- the editor ---------------------------------------------------------------------
    def open_editor(self, spec: ServerSpec | None) -> ServerEditor:
        taken = [s.id for s in self.entries()]
        editor = ServerEditor(self.core, tasks=self.tasks, spec=spec, new_id=new_id("server", taken), parent=self)
        editor.accepted.connect(lambda: self._editor_saved(editor))
        editor.open()
        return editor

    def _on_add(self) -> None:
        self.open_editor(None)

    def _on_edit(self) -> None:
        spec = self._selected()
        if spec is not None and spec.id != MANAGED_ID:
            self.open_editor(spec)

    def _editor_saved(self, editor: ServerEditor) -> None:
        new = editor.result_spec
        if new is None:
            return
        specs = self.entries()
        if editor.original is None:
            taken = [s.id for s in specs]
            new = new.replace(id=new_id(new.name, taken))
            specs.append(new)
        else:
            specs = [new if s.id == new.id else s for s in specs]
        my_pc = new.url if new.id == MY_PC_ID else None
        self.tasks.spawn(self._store_secrets(new, editor.typed_secrets, specs, my_pc), name="save server")

    async def _store_secrets(self, spec: ServerSpec, typed: dict[str, str], specs: list[ServerSpec],
                             my_pc_url: str | None) -> None:
        # Secrets first: the pool rebuilt by the settings change must find them.
        for which, value in typed.items():
            await asyncio.to_thread(self.core.secrets.set, spec.secret_name(which), value)
        for which, used in (("auth", spec.uses_auth), ("token", bool(spec.token_param))):
            if not used:
                await asyncio.to_thread(self.core.secrets.delete, spec.secret_name(which))
        if shiboken6.isValid(self):  # after the await the page may be gone
            self.save(specs, my_pc_url=my_pc_url)
        else:
            self.core.settings.update(**entries_to_settings(specs, my_pc_url=my_pc_url))

    # ---- finding and refreshing -----------------------------------------------------------
    def _on_find(self) -> None:
        self.find_button.setEnabled(False)
        self.note.setText("Looking on this computer…")
        self.tasks.spawn(self._find(), name="find local servers")

    async def _find(self) -> None:
        from studio_core.providers.comfy import discovery

        s = self.core.settings.current
        candidates = list(discovery.LOCAL_CANDIDATES)
        if s.comfy_managed_url and s.comfy_managed_url not in candidates:
            candidates.append(s.comfy_managed_url)
        answers = await asyncio.gather(*(discovery.answers(u) for u in candidates))
        found = [u for u, ok in zip(candidates, answers) if ok]
        if not shiboken6.isValid(self):  # after the await the page may be gone
            return
        self.find_button.setEnabled(True)
        specs = self.entries()
        known = {x.url for x in specs}
        added = []
        for url in found:
            if url in known or url == s.comfy_managed_url:
                continue
            port = url.rsplit(":", 1)[1]
            spec = ServerSpec(id=new_id(f"local-{port}", [x.id for x in specs]), name=f"This computer :{port}",
                              url=url, may_be_off=True)
            specs.append(spec)
            added.append(url)
        if added:
            self.save(specs)
        tried = ", ".join(candidates)
        if not found:
            self.note.setText(f"No ComfyUI answered on this computer ({tried}).")
        elif added:
            self.note.setText("Added " + ", ".join(added) + ".")
        else:
            self.note.setText("Found " + ", ".join(found) + "; already in the list.")

    def _on_refresh(self) -> None:
        self.refresh_button.setEnabled(False)
        self.tasks.spawn(self._refresh(), name="refresh servers")

    async def _refresh(self) -> None:
        try:
            pool = self.core.services.provider("comfyui")
            if hasattr(pool, "refresh"):
                self._take_states(await pool.refresh())
        finally:
            if shiboken6.isValid(self):  # after the await the page may be gone
                self.refresh_button.setEnabled(True)

    async def _first_states(self) -> None:
        pool = self.core.services.provider("comfyui")
        if hasattr(pool, "states"):
            self._take_states(pool.states())

    def _take_states(self, states) -> None:
        self.states = {s.id: s for s in states}
        self.reload()

    def _on_pool_state(self, ev) -> None:
        self._take_states(ev.servers)

    def _on_settings_changed(self, settings, _changed) -> None:
        self.reload()
        if self.allow_paid.isChecked() != settings.pool_allow_paid:
            self.allow_paid.setChecked(settings.pool_allow_paid)


def servers_page(core, *, tasks: TaskOwner, parent: QWidget | None = None) -> QWidget:
    return ServersPage(core, tasks=tasks, parent=parent)
