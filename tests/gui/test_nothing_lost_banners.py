"""What was left from last time is offered back: the queue ("waiting — resume?") in the
Generate tab, unsaved images in the Saved tab; a settings write that fails is told to
the user (issue 12, "nothing lost")."""

from __future__ import annotations

from studio_core.models import GenerationRequest, JobImage
from studio_core.queue_store import WaitingJob
from tests.fakes import FakeProvider, png_bytes
from tests.gui.conftest import wait_until


def restore_two(core) -> list[WaitingJob]:
    waiting = [WaitingJob("old-1", GenerationRequest("a golden key", service="replicate"), True, ""),
               WaitingJob("old-2", GenerationRequest("a slime, pixel art", service="comfyui"), False, "")]
    for w in waiting:
        core.queue_store.put(w.job_id, w.request, paid=w.paid)
    core.session.restored(waiting)
    return waiting


def test_a_restored_queue_shows_as_waiting_with_service_and_price(window, core):
    restore_two(core)
    banner = window.generate_tab and window.resume_banner
    assert banner.isVisibleTo(window)
    assert "2 jobs from last time are waiting. Resume?" in banner.title.text()
    assert "1 on a paid service" in banner.title.text()
    jobs = banner.jobs.text()
    assert "a golden key" in jobs and "Replicate, paid" in jobs
    assert "a slime, pixel art" in jobs and "ComfyUI (local), free" in jobs


def test_resume_all_queues_them_again(window, core, loop, monkeypatch):
    restore_two(core)
    provs = {"replicate": FakeProvider("replicate"), "comfyui": FakeProvider("comfyui")}
    monkeypatch.setattr(core.services, "provider", provs.__getitem__)
    banner = window.generate_tab and window.resume_banner
    banner.resume_button.click()
    assert not banner.isVisibleTo(window) and core.session.waiting == []
    loop.run_until_complete(wait_until(lambda: provs["replicate"].requests and provs["comfyui"].requests))
    assert provs["replicate"].requests[0].prompt == "a golden key"


def test_dismiss_forgets_them_without_running_anything(window, core, loop, monkeypatch):
    restore_two(core)
    provs = {"replicate": FakeProvider("replicate"), "comfyui": FakeProvider("comfyui")}
    monkeypatch.setattr(core.services, "provider", provs.__getitem__)
    banner = window.generate_tab and window.resume_banner
    banner.dismiss_button.click()
    assert not banner.isVisibleTo(window)
    assert "old-1" not in core.queue_store and "old-2" not in core.queue_store
    assert core.jobs.entries() == [] and provs["replicate"].requests == []


def keep_one(core, loop) -> str:
    from studio_core.recovery import folder_for

    assert core.recovery.folder == folder_for(core.paths.data)
    request = GenerationRequest("a blue gem", service="comfyui")
    core.recovery.keep("unsaved-1", JobImage("job-9", png_bytes(), seed=5), request, "The disk is full.")
    return "unsaved-1"


def test_unsaved_images_are_offered_back_and_saved_once(window, core, loop):
    keep_one(core, loop)
    banner = window.saved_tab and window.recovery_banner
    window.tabs.setCurrentIndex(1)
    loop.run_until_complete(wait_until(lambda: banner.recovered))
    assert banner.isVisibleTo(window)
    assert banner.title.text().startswith("1 image could not be saved.")
    loop.run_until_complete(banner.save_all())
    assert not banner.isVisibleTo(window)
    assert loop.run_until_complete(core.session.recovered()) == []
    pngs = list(core.paths.images.rglob("*.png"))
    assert len(pngs) == 1
    # A second press cannot write a duplicate: the entry is gone, nothing is saved twice.
    loop.run_until_complete(banner.save_all())
    assert len(list(core.paths.images.rglob("*.png"))) == 1


def test_discard_asks_first_then_deletes(window, core, loop):
    from PySide6.QtWidgets import QMessageBox

    keep_one(core, loop)
    banner = window.saved_tab and window.recovery_banner
    window.tabs.setCurrentIndex(1)
    loop.run_until_complete(wait_until(lambda: banner.recovered))
    box = banner.ask_discard()
    box.button(QMessageBox.StandardButton.Cancel).click()
    assert len(loop.run_until_complete(core.session.recovered())) == 1
    box = banner.ask_discard()
    discard = next(b for b in box.buttons() if b.text() == "Discard")
    discard.click()
    loop.run_until_complete(wait_until(lambda: not banner.recovered))
    assert loop.run_until_complete(core.session.recovered()) == []
    assert not banner.isVisibleTo(window)


def test_a_settings_write_that_fails_is_shown_in_the_status_bar_and_the_page(window, core, loop, monkeypatch):
    from studio_core import settings as settings_module
    from studio_gui.settings_dialog import SettingsDialog

    def refuse(path, text):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(settings_module, "atomic_write_text", refuse)
    dlg = SettingsDialog(core, tasks=window.tasks, parent=window, page="Storage")
    dlg.show()
    core.settings.update(low_disk_warning_mb=core.settings.current.low_disk_warning_mb + 1)
    loop.run_until_complete(core.settings.flush())
    loop.run_until_complete(wait_until(lambda: window.status.currentMessage()))
    assert "Settings could not be saved" in window.status.currentMessage()
    assert "No space left on device" in window.status.currentMessage()
    assert dlg.write_problem.isVisible() and "Storage page" in dlg.write_problem.text()
    dlg.close()
