"""Custom ComfyUI workflows in the GUI: pick an API-format file and map its inputs.

:class:`WorkflowPicker` is the compact row on the ComfyUI settings; its
``request_options()`` go into ``GenerationRequest.with_options(**...)``.
:class:`WorkflowMappingDialog` lets the user say which input takes each request field.
"""

from __future__ import annotations

from studio_gui.comfy_workflow.loaded import LoadedWorkflow, read_workflow
from studio_gui.comfy_workflow.mapping_dialog import WorkflowMappingDialog
from studio_gui.comfy_workflow.picker import WorkflowPicker

__all__ = ["LoadedWorkflow", "WorkflowMappingDialog", "WorkflowPicker", "read_workflow"]
