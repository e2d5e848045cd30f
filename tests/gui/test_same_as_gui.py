"""The Generate tab's half of tests/core/test_same_as_gui.py: a walk in four directions with
a transparent background, clicked through the tab, leaves the same files and gallery rows
(names aside) as the same order run from a plain script through ``core.session``."""

from __future__ import annotations

import pytest

from studio_core.frame_plans import FrameSetSpec
from studio_core.models import GenerationRequest
from studio_core.session import GenerationOrder
from studio_core.sprites import frames
from tests.core.test_same_as_gui import KeyColourProvider, script_run
from tests.gui.conftest import shown_generate_tab, wait_until
from tests.pipeline_outcome import outcome

WALK_4 = FrameSetSpec(mode="animation", animation="walk", directions=4)
# A cloud service with the in-app key-colour method, so the pipeline makes the transparent copies.
ASKED = GenerationRequest(prompt="a green slime knight", service="huggingface", seed=77, width=512, height=512,
                          steps=3)


@pytest.fixture
def tab(qtbot, core, loop):
    with shown_generate_tab(qtbot, core, loop, service="huggingface") as w:
        yield w


def test_generate_tab_and_script_leave_the_same_files_and_rows(tab, core, loop, tmp_path):
    from studio_core.paths import AppPaths

    fake = KeyColourProvider(steps=1)
    core.jobs.provider_for = lambda service: fake
    finished: list = []
    tab.bridge.frame_set_finished.connect(finished.append)

    # What a user does: fill the fields, pick 4-direction walk, tick Transparent background, click.
    tab.apply_request(ASKED)
    tab.frames_panel.set_settings(WALK_4)
    tab.transparency.checkbox.setChecked(True)
    loop.run_until_complete(tab.transparency.started())
    assert tab.generate_button.isEnabled(), tab.generate_button.toolTip()
    tab.generate_button.click()
    loop.run_until_complete(wait_until(lambda: finished, timeout=60))
    loop.run_until_complete(wait_until(lambda: not core.jobs.busy and tab.tasks.running == 0))
    [result] = finished
    poses = len(frames.ANIMATIONS["walk"])
    assert result.failed == () and len(result.paths) == 4 * poses
    assert set(result.transparent) == set(result.names)
    assert f"{4 * poses} frames ready" in tab.frames_panel.ready_bar.text.text()
    window = loop.run_until_complete(outcome(core))

    # The same order from a script: the request the tab built, the choices it showed.
    order = GenerationOrder(tab.build_request(), WALK_4, transparent=True)
    assert order.request.seed == 77 and order.request.service == "huggingface"
    other = AppPaths.portable(tmp_path / "script")
    other.ensure()
    script_core, script_result, script_fake = loop.run_until_complete(script_run(other, order=order))
    try:
        script = loop.run_until_complete(outcome(script_core))
    finally:
        loop.run_until_complete(script_core.aclose())

    assert [r.prompt for r in fake.requests] == [r.prompt for r in script_fake.requests]
    assert script_result.names == result.names
    assert len(window["files"]) == 8 * poses and len(window["rows"]) == 8 * poses
    assert window == script
