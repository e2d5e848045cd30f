"""The GUI tells errors apart by type, never by class-name strings (issue 12)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from studio_core.errors import MissingCredentials
from studio_core.models import ServiceState
from tests.fakes import FakeProvider

ROOT = Path(__file__).resolve().parents[2]


class KeyExpired(MissingCredentials):
    """A provider's own, more specific 'no usable key'."""


class RaisingCheck(FakeProvider):
    async def check(self):
        raise KeyExpired("token expired")


def test_a_subclass_of_missing_credentials_still_means_needs_key(core, loop, monkeypatch):
    from studio_gui.services.checks import check_service

    core.secrets.set("openai", "sk-test-key-00000000")  # so the check reaches the provider
    monkeypatch.setattr(core.services, "provider", lambda sid: RaisingCheck(sid))
    status = loop.run_until_complete(check_service(core, "openai"))
    assert status.state == ServiceState.needs_key


def test_no_class_name_comparisons_in_the_gui():
    out = subprocess.run(["grep", "-rnE", r"__name__ *(==|!=|in )|class_name", str(ROOT / "studio_gui")],
                         capture_output=True, text=True)
    assert out.stdout == "", out.stdout


def test_missing_models_name_each_file_and_its_folder():
    from studio_core.providers.comfy.errors import validation_error
    from studio_gui.errors import hint

    body = {"node_errors": {
        "4": {"class_type": "CheckpointLoaderSimple", "errors": [
            {"type": "value_not_in_list", "details": "ckpt_name: 'dreamshaper_8.safetensors' not in [...]",
             "extra_info": {"input_name": "ckpt_name", "received_value": "dreamshaper_8.safetensors"}}]},
        "7": {"class_type": "LoraLoader", "errors": [
            {"type": "value_not_in_list", "details": "lora_name: 'pixel.safetensors' not in [...]",
             "extra_info": {"input_name": "lora_name", "received_value": "pixel.safetensors"}}]}}}
    text = hint(validation_error(body))
    assert "dreamshaper_8.safetensors → models/checkpoints" in text
    assert "pixel.safetensors → models/loras" in text
    assert "restart ComfyUI" in text


def test_the_error_area_offers_the_fix_that_fits_the_error(qtbot):
    from studio_core.errors import ContentRefused, OutOfVram, ServerError
    from studio_gui.errors import MAKE_IT_FIT, RETRY
    from studio_gui.generate.error_area import ErrorArea

    area = ErrorArea()
    qtbot.addWidget(area)
    called: list[tuple[str, BaseException]] = []
    area.offer_handlers = {RETRY: lambda e: called.append(("retry", e)),
                           MAKE_IT_FIT: lambda e: called.append(("fit", e))}
    oom = OutOfVram("CUDA out of memory")
    area.show_error(oom)
    assert area.action_button.isVisibleTo(area) and area.action_button.text() == "Make it fit"
    area.action_button.click()
    assert called == [("fit", oom)]
    busy = ServerError("502 after retries")
    area.show_error(busy)
    assert area.action_button.text() == "Retry"
    area.action_button.click()
    assert called[-1] == ("retry", busy)
    area.show_error(ContentRefused("blocked"))
    assert not area.action_button.isVisibleTo(area)


def test_retry_queues_the_failed_request_again(qtbot, qapp, core, loop, monkeypatch):
    from studio_core.errors import ServerError
    from studio_core.models import GenerationRequest, JobStarted
    from studio_gui.main_window import MainWindow
    from tests.gui.conftest import wait_until

    prov = FakeProvider("replicate", script=[JobStarted("x"), ServerError("503 after retries")])
    monkeypatch.setattr(core.services, "provider", lambda sid: prov)
    was = qapp.quitOnLastWindowClosed()
    qapp.setQuitOnLastWindowClosed(False)
    w = MainWindow(core)
    qtbot.addWidget(w)
    try:
        area = w.generate_tab.error_area
        core.jobs.submit(GenerationRequest("a torch", service="replicate"))
        loop.run_until_complete(wait_until(lambda: area.action_button.isVisibleTo(area)))
        assert area.action_button.text() == "Retry"
        prov.script = None  # the service is back
        area.action_button.click()
        loop.run_until_complete(wait_until(lambda: len(prov.requests) == 2 and not core.jobs.busy))
        assert [r.prompt for r in prov.requests] == ["a torch", "a torch"]
    finally:
        w.close_without_asking("cancel")
        w.close()
        qapp.setQuitOnLastWindowClosed(was)


def test_make_it_fit_without_a_proposal_says_what_to_do(qtbot, qapp, core):
    from studio_core.errors import OutOfVram
    from studio_gui.main_window import MainWindow

    w = MainWindow(core)
    qtbot.addWidget(w)
    _ = w.generate_tab
    assert w.make_it_fit(OutOfVram("oom")) is False
    assert "lower the size or batch" in w.status.currentMessage()
