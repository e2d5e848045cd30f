"""The parts of the Generate tab that make up an order beyond the request: the sprite
style picker (``GenerationOrder.style``), the transparent-background option
(``transparent``) and the frames/variants panel (``frames``). The core's session applies
them, in that order, so the key-colour words end the prompt.

Each is attached only if it builds; a failure is logged and the tab works without it, so
a broken part never takes Generate down. They are all in this repository, so the tests
require each one (a missing part fails there, it does not skip).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable

from studio_core.models import GenerationRequest

if TYPE_CHECKING:
    from studio_gui.generate.tab import GenerateTab

log = logging.getLogger(__name__)


def attach_style_picker(tab: GenerateTab) -> object | None:
    try:
        from studio_gui.sprites.style_picker import StylePicker
        from studio_core.sprites.styles import StylePreset

        picker = StylePicker(parent=tab)
    except Exception:
        log.exception("style picker not available")
        return None
    picker.setToolTip("Adds words (and suggested settings) to the prompt for this kind of sprite")
    tab.add_prompt_widget(picker)

    def on_reuse(request: GenerationRequest) -> None:
        # A reused prompt already carries the style's words; applying a style again
        # would add them twice.
        picker.set_preset(StylePreset())

    tab.on_apply_request(on_reuse)
    tab.on_started(picker.load)
    return picker


def attach_transparency(tab: GenerateTab) -> object | None:
    try:
        from studio_gui.generate.transparency import TransparencyOption

        option = TransparencyOption(tab.core, tasks=tab.tasks, parent=tab, show_notice=tab.progress.show_notice)
    except Exception:
        log.exception("transparent background option not available")
        return None
    tab.add_section(option)
    tab.on_apply_request(option.on_reuse)
    tab.on_started(option.started)
    return option


def attach_frames_panel(tab: GenerateTab) -> object | None:
    try:
        from studio_gui.sprites.frames_panel import FramesPanel

        panel = FramesPanel(tab.core, tasks=tab.tasks, parent=tab)
    except Exception:
        log.exception("frames panel not available")
        return None
    tab.add_section(panel)
    # The "frames ready → make sheet" bar belongs beside the results, not down in the settings.
    tab.add_results_banner(panel.ready_bar)
    panel.set_request_source(tab.build_request)
    tab.on_started(panel.load)
    return panel


def part_builders(tab: GenerateTab) -> list[tuple[str, Callable[[], object | None]]]:
    """The parts in the order they are built and shown, as (tab attribute, builder) pairs;
    the tab builds them at once or one per event-loop turn after its first paint."""

    def image_inputs() -> object | None:
        from studio_gui.inputs.attach import attach_image_inputs

        return attach_image_inputs(tab)

    return [("image_inputs", image_inputs),
            ("style_picker", lambda: attach_style_picker(tab)),
            ("transparency", lambda: attach_transparency(tab)),
            ("frames_panel", lambda: attach_frames_panel(tab))]
