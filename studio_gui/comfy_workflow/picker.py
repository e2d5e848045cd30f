"""WorkflowPicker: built-in graph or a custom API-format workflow, with its input mapping.

The chosen file and mapping persist in ``settings.providers["comfyui"]`` (``workflow_file``,
``workflow_map``) and ``settings.comfy_workflow_file``. Files are read and parsed off the GUI
thread; problems (UI-format export, broken JSON, a vanished file) show inline, in the core's
own words, and the picker falls back to the built-in workflow.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import shiboken6
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio_core.errors import StudioError
from studio_core.providers.comfy.custom_workflow import WorkflowMap
from studio_gui.comfy_workflow.loaded import (LoadedWorkflow, describe, map_from_setting, map_to_setting,
                                              read_workflow)
from studio_gui.comfy_workflow.mapping_dialog import WorkflowMappingDialog
from studio_gui.eliding_combo import ElidingComboBox
from studio_gui.errors import user_text
from studio_gui.tasks import TaskOwner

log = logging.getLogger(__name__)

BUILT_IN = "Built-in workflow (from the model)"
BUILT_IN_STATUS = "Built-in workflow: the app builds the graph from the model and the settings above."
PROVIDER = "comfyui"
MESSAGE_STYLE = "color: #c0392b;"
COMBO_TIP = "Run the app's own graph, or a workflow exported from ComfyUI in API format"


class WorkflowPicker(QWidget):
    """``changed`` fires whenever ``request_options()`` would return something different."""

    changed = Signal()

    def __init__(self, core: Any, *, tasks: TaskOwner, parent: QWidget | None = None):
        super().__init__(parent)
        self.core = core
        self.tasks = tasks
        self._workflow: LoadedWorkflow | None = None
        self._mapping = WorkflowMap()
        self._load_task: asyncio.Task | None = None
        self._file_dialog: QFileDialog | None = None
        self.dialog: WorkflowMappingDialog | None = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(4)
        row = QHBoxLayout()
        self.combo = ElidingComboBox(min_chars=16)
        self.combo.setAccessibleName("Workflow")
        self.combo.setToolTip(COMBO_TIP)
        self.combo.addItem(BUILT_IN, "")
        self.combo.currentIndexChanged.connect(self._on_combo_index)
        self.load_button = QPushButton("Load workflow…")
        self.load_button.setToolTip("Load a workflow saved from ComfyUI with Workflow → Export (API)")
        self.load_button.clicked.connect(self._on_load_clicked)
        self.map_button = QPushButton("Map inputs…")
        self.map_button.setToolTip("Choose which node inputs take the prompt, seed, size and steps")
        self.map_button.clicked.connect(self.open_mapping_dialog)
        # The buttons sit under the list, not beside it: side by side the row alone was wider
        # than the Generate column on a 1024 px screen.
        lay.addWidget(self.combo)
        row.addWidget(self.load_button)
        row.addWidget(self.map_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.status = QLabel(BUILT_IN_STATUS)
        self.status.setWordWrap(True)
        self.status.setAccessibleName("Workflow status")
        self.status.setStyleSheet("color: palette(placeholder-text);")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.setAccessibleName("Workflow problem")
        self.message.setStyleSheet(MESSAGE_STYLE)
        self.message.hide()
        lay.addWidget(self.status)
        lay.addWidget(self.message)
        self._refresh()

    # ---- what the Generate tab reads -------------------------------------------------

    @property
    def workflow(self) -> LoadedWorkflow | None:
        return self._workflow if self.is_custom() else None

    @property
    def mapping(self) -> WorkflowMap:
        return self._mapping

    def is_custom(self) -> bool:
        return bool(self.combo.currentData()) and self._workflow is not None

    def request_options(self) -> dict[str, Any]:
        """``{}`` for the built-in graph; else the options ComfyProvider.prepare() reads."""
        wf = self.workflow
        if wf is None:
            return {}
        # Every field is listed, None for "(not used)": a missing key would mean "guess".
        return {"workflow": wf.text, "workflow_map": map_to_setting(self._mapping)}

    # ---- start-up ------------------------------------------------------------------------

    async def started(self) -> None:
        """Reload the saved workflow (if any); call once after the core is open."""
        saved = self.core.settings.current.provider(PROVIDER)
        path = saved.get("workflow_file") or self.core.settings.current.comfy_workflow_file
        if not path:
            return
        await self.load(str(path), saved_map=saved.get("workflow_map"), restoring=True)

    # ---- loading -------------------------------------------------------------------------

    def _on_load_clicked(self) -> None:
        start = str(Path(self._workflow.path).parent) if self._workflow else ""
        dlg = QFileDialog(self, "Load a ComfyUI workflow (API format)", start,
                          "ComfyUI API workflow (*.json);;All files (*)")
        dlg.setFileMode(QFileDialog.FileMode.ExistingFile)
        dlg.fileSelected.connect(lambda path: self.tasks.spawn(self.load(path), name="load workflow"))
        self._file_dialog = dlg
        dlg.open()

    async def load(self, path: str, *, saved_map: Any = None, restoring: bool = False) -> bool:
        """Read ``path`` off the GUI thread and make it the active workflow. False on a problem
        (shown inline); a newer load cancels an older one."""
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
        name = Path(path).name
        self.load_button.setEnabled(False)
        self.status.setText(f"Loading {name}…")
        self._load_task = asyncio.ensure_future(asyncio.to_thread(read_workflow, path))
        try:
            wf = await self._load_task
        except asyncio.CancelledError:
            raise
        except StudioError as exc:
            log.warning("workflow %s: %s", path, exc)
            if shiboken6.isValid(self):  # after the await the picker may be gone
                self._show_problem(exc, path=path, restoring=restoring)
            return False
        finally:
            if shiboken6.isValid(self):  # after the await the picker may be gone
                self.load_button.setEnabled(True)
        if not shiboken6.isValid(self):  # the panel closed while the file was read
            return False
        self._workflow = wf
        self._mapping = map_from_setting(saved_map, wf) if restoring else wf.guess
        self._set_combo(wf)
        self.message.hide()
        self._persist()
        self._refresh()
        self.changed.emit()
        return True

    def _show_problem(self, exc: StudioError, *, path: str, restoring: bool) -> None:
        text = user_text(exc)
        if restoring:
            missing = isinstance(exc.__cause__, FileNotFoundError)
            lead = (f"The saved workflow '{Path(path).name}' is no longer there ({path}). "
                    if missing else f"The saved workflow '{Path(path).name}' could not be used. ")
            text = lead + "Using the built-in workflow; load it again with “Load workflow…”." + \
                ("" if missing else "\n" + user_text(exc))
            # Forget it, so the next start does not repeat the message; the user sees why here.
            self._workflow = None
            self._set_combo(None)
            self._persist()
            self.changed.emit()
        else:
            # Whatever was in use stays in use; say so, so the old status line is not misread.
            text = f"'{Path(path).name}' was not loaded. {text}"
        self.message.setText(text)
        self.message.show()
        self._refresh()

    def _set_combo(self, wf: LoadedWorkflow | None) -> None:
        self.combo.blockSignals(True)
        while self.combo.count() > 1:
            self.combo.removeItem(1)
        if wf is not None:
            self.combo.addItem(f"{wf.name} (custom)", wf.path)
            self.combo.setItemData(1, wf.path, Qt.ItemDataRole.ToolTipRole)
            self.combo.setCurrentIndex(1)
        else:
            self.combo.setCurrentIndex(0)
        self.combo.blockSignals(False)
        # The box is narrow and elides the name: the tooltip says it whole.
        self.combo.setToolTip(f"{self.combo.itemText(1)}\n{wf.path}\n\n{COMBO_TIP}" if wf is not None else COMBO_TIP)

    def _on_combo_index(self, _i: int) -> None:
        self.message.hide()
        self._persist()
        self._refresh()
        self.changed.emit()

    # ---- mapping -------------------------------------------------------------------------

    def open_mapping_dialog(self) -> WorkflowMappingDialog | None:
        wf = self.workflow
        if wf is None:
            return None
        if self.dialog is not None:
            self.dialog.close()
        self.dialog = WorkflowMappingDialog(wf, current=self._mapping, parent=self)
        self.dialog.mapping_chosen.connect(self.set_mapping)
        self.dialog.open()
        return self.dialog

    def set_mapping(self, mapping: WorkflowMap) -> None:
        if mapping == self._mapping:
            return
        self._mapping = mapping
        self._persist()
        self._refresh()
        self.changed.emit()

    # ---- state -----------------------------------------------------------------------------

    def _persist(self) -> None:
        wf = self.workflow
        path = wf.path if wf else ""
        values: dict[str, Any] = {"workflow_file": path}
        if wf is not None:
            values["workflow_map"] = map_to_setting(self._mapping)
        settings = self.core.settings
        if settings.current.provider(PROVIDER) != {**settings.current.provider(PROVIDER), **values}:
            settings.update_provider(PROVIDER, **values)
        if settings.current.comfy_workflow_file != path:
            settings.update(comfy_workflow_file=path)

    def _refresh(self) -> None:
        wf = self.workflow
        self.map_button.setEnabled(wf is not None)
        if wf is None:
            self.status.setText(BUILT_IN_STATUS)
            self.status.setToolTip("")
            return
        line = describe(wf, self._mapping)
        if self._mapping.prompt is None:
            line += " — nothing takes the prompt: choose an input with “Map inputs…”"
        self.status.setText(line)
        self.status.setToolTip(wf.path)
