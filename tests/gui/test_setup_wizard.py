"""The “Set up local generation” wizard against the loopback mirror (tests/setup_mirror.py)."""

from __future__ import annotations

import pytest

from studio_core.setup import catalog as catalog_mod
from studio_core.setup.catalog import Catalog
from studio_core.setup.gpu_facts import GpuFacts
from studio_core.setup.pyenv import PythonEnv
from tests.gui.conftest import wait_until
from tests.setup_mirror import TOOL, SetupMirror, catalog_dict, comfy_archive, fake_safetensors, server_site_packages

SIX_GB = GpuFacts("NVIDIA GeForce RTX 3050", 6144, "552.22", (12, 4))


def wizard(core, tasks, **kw):
    from studio_gui.setup_wizard import SetupWizard

    return SetupWizard(core, tasks=tasks, **kw)


def test_plan_page_on_windows_shows_the_card_and_the_pinned_portable_build(qtbot, loop, core, tmp_path):
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    dlg = wizard(core, tasks, gpu_reader=lambda: SIX_GB, folder=tmp_path / "ComfyUI", platform="win32",
                 git_finder=lambda: None)
    qtbot.addWidget(dlg)
    dlg.show()
    loop.run_until_complete(wait_until(lambda: dlg.components.topLevelItemCount() == 4))
    assert "RTX 3050" in dlg.gpu_label.text() and "CUDA 12.4" in dlg.gpu_label.text()
    rows = [dlg.components.topLevelItem(i) for i in range(4)]
    assert "(portable, NVIDIA)" in rows[0].text(0) and rows[0].text(1) == "2.0 GB"
    assert rows[0].text(3) == "pinned in the app (third-party list)" and "managed-runtime" in rows[0].toolTip(3)
    assert "python_embeded" in rows[1].text(0) and rows[1].text(1) == "included"
    assert "DreamShaper" in rows[2].text(0) and rows[2].text(2) == "CreativeML Open RAIL-M" and "Pose" in rows[3].text(0)
    assert "free" in dlg.disk_label.text() and "--lowvram" in dlg.notes_label.text()
    assert dlg.install_button.isEnabled() and dlg.sum_box.isHidden() and dlg.build_row.isHidden()
    from studio_core.setup.installer import UnpackProgress

    dlg._on_event(UnpackProgress("ComfyUI_windows_portable_nvidia.7z", 3 * 1024 ** 3, 6 * 1024 ** 3))
    assert dlg.file_bar.value() == 500 and dlg.file_detail.text() == "3.0 GB of 6.0 GB unpacked"
    assert dlg.file_label.text() == "Unpacking ComfyUI_windows_portable_nvidia.7z"
    dlg.close()
    loop.run_until_complete(tasks.cancel_all())


def test_windows_without_nvidia_lets_the_user_name_an_amd_card(qtbot, loop, core, tmp_path):
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    dlg = wizard(core, tasks, gpu_reader=lambda: None, folder=tmp_path / "ComfyUI", platform="win32")
    qtbot.addWidget(dlg)
    dlg.show()
    loop.run_until_complete(wait_until(lambda: dlg.components.topLevelItemCount() > 0))
    assert dlg.build_row.isVisible() and "--cpu" in dlg.notes_label.text()
    dlg.build_choice.setCurrentIndex(dlg.build_choice.findData("amd"))
    loop.run_until_complete(wait_until(lambda: "AMD Radeon)" in dlg.components.topLevelItem(0).text(0)))
    assert dlg.plan.downloads[0].name == "ComfyUI_windows_portable_amd.7z" and dlg.install_button.isEnabled()
    assert "AMD Radeon" in dlg.gpu_label.text()
    dlg.close()
    loop.run_until_complete(tasks.cancel_all())


def test_plan_page_on_linux_uses_git_or_says_git_is_missing(qtbot, loop, core, tmp_path):
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    dlg = wizard(core, tasks, gpu_reader=lambda: SIX_GB, folder=tmp_path / "ComfyUI", platform="linux",
                 git_finder=lambda: "/usr/bin/git")
    qtbot.addWidget(dlg)
    dlg.show()
    loop.run_until_complete(wait_until(lambda: dlg.components.topLevelItemCount() == 4))
    assert dlg.components.topLevelItem(0).text(3) == "verified by git against commit 72865f4…"
    assert "PyTorch" in dlg.components.topLevelItem(1).text(0) and dlg.install_button.isEnabled()
    dlg.close()
    # Without git: said plainly, and the source zip's pasted-sum path is offered instead.
    dlg = wizard(core, tasks, gpu_reader=lambda: SIX_GB, folder=tmp_path / "ComfyUI", platform="linux",
                 git_finder=lambda: None)
    qtbot.addWidget(dlg)
    dlg.show()
    loop.run_until_complete(wait_until(dlg.sum_box.isVisible))
    assert "git was not found" in dlg.notes_label.text()
    assert catalog_mod.load().latest.archive.name in dlg.problems_label.text()
    assert catalog_mod.load().latest.archive.name in dlg.sum_prompt.text() and not dlg.install_button.isEnabled()
    dlg.close()
    loop.run_until_complete(tasks.cancel_all())


def test_cancel_mid_download_leaves_nothing(qtbot, loop, core, tmp_path):
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    with SetupMirror() as mirror:
        cat = Catalog.from_dict(catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=fake_safetensors(),
                                             pose=fake_safetensors(10_000)))
        mirror.hold_after["/models/tiny.safetensors"] = 100_000
        dlg = wizard(core, tasks, catalog=cat, gpu_reader=lambda: None, folder=tmp_path / "disk" / "ComfyUI")
        qtbot.addWidget(dlg)
        dlg.show()
        loop.run_until_complete(wait_until(dlg.install_button.isEnabled))
        dlg.install_button.click()
        loop.run_until_complete(wait_until(lambda: dlg.file_label.text() == "tiny.safetensors"
                                           and dlg.file_bar.value() > 0))
        assert "left" in dlg.overall_detail.text() or "/s" in dlg.overall_detail.text() or "of" in dlg.overall_detail.text()
        dlg.cancel_button.click()
        loop.run_until_complete(wait_until(lambda: dlg.pages.currentIndex() == 2))
        assert "Cancelled" in dlg.result_label.text()
        assert not (tmp_path / "disk").exists() or list((tmp_path / "disk").iterdir()) == []
        dlg.close()
    loop.run_until_complete(tasks.cancel_all())


def test_wrong_sum_is_shown_in_place_with_the_file_named(qtbot, loop, core, tmp_path):
    from studio_gui.tasks import TaskOwner

    tasks = TaskOwner()
    with SetupMirror() as mirror:
        cat = Catalog.from_dict(catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=fake_safetensors(),
                                             pose=fake_safetensors(10_000), model_sha="f" * 64))
        dlg = wizard(core, tasks, catalog=cat, gpu_reader=lambda: None, folder=tmp_path / "ComfyUI")
        qtbot.addWidget(dlg)
        dlg.show()
        loop.run_until_complete(wait_until(dlg.install_button.isEnabled))
        dlg.install_button.click()
        loop.run_until_complete(wait_until(lambda: dlg.pages.currentIndex() == 2))
    assert "tiny.safetensors" in dlg.result_label.text() and "checksum" in dlg.result_label.text()
    assert dlg.retry_button.isVisible() and not (tmp_path / "ComfyUI").exists()
    dlg.close()
    loop.run_until_complete(tasks.cancel_all())


@pytest.mark.comfy_server
@pytest.mark.slow
def test_full_setup_registers_starts_and_shows_the_test_image(qtbot, loop, core, tmp_path):
    from studio_gui.tasks import TaskOwner

    core.settings.update(comfy_url="http://192.168.1.20:8188")  # what the user typed stays theirs
    archive = comfy_archive().read_bytes()
    tasks = TaskOwner()
    folder = tmp_path / "ComfyUI"
    with SetupMirror() as mirror:
        cat = Catalog.from_dict(catalog_dict(mirror, archive=archive, model=fake_safetensors(),
                                             pose=fake_safetensors(10_000)))
        env = PythonEnv(python=[TOOL.find_python311()], base_site_packages=server_site_packages())
        dlg = wizard(core, tasks, catalog=cat, env=env, gpu_reader=lambda: None, folder=folder)
        qtbot.addWidget(dlg)
        dlg.show()
        loop.run_until_complete(wait_until(dlg.install_button.isEnabled))
        assert "processor" in dlg.gpu_label.text()
        dlg.install_button.click()
        loop.run_until_complete(wait_until(lambda: dlg.pages.currentIndex() == 2, timeout=400))
    assert dlg.result_label.text().startswith("✔"), dlg.result_label.text()
    assert dlg.result_image is not None and dlg.result_image.width() == 64
    s = core.settings.current
    assert s.comfy_server_folder == str(folder) and s.comfy_manage_server
    assert s.comfy_url == "http://192.168.1.20:8188" and s.comfy_managed_url.startswith("http://127.0.0.1:")
    assert core.comfy_server.running
    assert "Requirement already satisfied" in dlg.log.toPlainText()
    dlg.close()
    loop.run_until_complete(core.comfy_server.stop())
    loop.run_until_complete(tasks.cancel_all())


def test_server_page_and_first_run_offer_the_setup(qtbot, loop, core, monkeypatch):
    from studio_core.models import ProviderStatus, ServiceState
    from studio_gui.comfy_settings.server_page import ServerPage
    from studio_gui.first_run import FirstRunPanel
    from studio_gui.setup_wizard import SetupWizard
    from studio_gui.tasks import TaskOwner
    from tests.fakes import FakeProvider

    tasks = TaskOwner()
    page = ServerPage(core, tasks=tasks)
    qtbot.addWidget(page)
    page.setup_button.click()
    assert isinstance(page.setup_wizard, SetupWizard) and page.setup_wizard.isVisible()
    page.setup_wizard.close()
    fake = FakeProvider("comfyui", status=ProviderStatus(ServiceState.unreachable, "no"))
    monkeypatch.setattr(core.services, "provider", lambda sid: fake)
    panel = FirstRunPanel(core, tasks=tasks)
    assert panel.setup_button.isHidden()  # until the probe has found nothing
    qtbot.addWidget(panel)
    panel.show()
    loop.run_until_complete(wait_until(panel.setup_button.isVisible))
    panel.setup_button.click()
    assert panel.setup_wizard.isVisible()
    panel.setup_wizard.close()
    loop.run_until_complete(tasks.cancel_all())


def test_a_pasted_checksum_is_checked_stored_per_url_and_unblocks_the_install(qtbot, loop, core, tmp_path):
    import hashlib

    from studio_gui.tasks import TaskOwner
    from tests.setup_fakes import release_zip

    tasks = TaskOwner()
    archive = release_zip("1")
    with SetupMirror() as mirror:
        data = catalog_dict(mirror, archive=archive, model=fake_safetensors(), pose=fake_safetensors(10_000))
        for r in data["comfyui"]:
            r["archive"]["sha256"] = None
        cat = Catalog.from_dict(data)
        dlg = wizard(core, tasks, catalog=cat, gpu_reader=lambda: None, folder=tmp_path / "ComfyUI")
        qtbot.addWidget(dlg)
        dlg.show()
        loop.run_until_complete(wait_until(dlg.sum_box.isVisible))
        assert "ComfyUI-test2.zip" in dlg.sum_prompt.text() and not dlg.install_button.isEnabled()
        assert dlg.components.topLevelItem(0).text(3) == "no checksum"
        dlg.sum_edit.setText("12ab-34")
        dlg.sum_button.click()
        assert dlg.sum_error.isVisible() and "not a SHA-256" in dlg.sum_error.text()
        assert core.settings.current.setup_entered_sums == {}
        digest = hashlib.sha256(archive).hexdigest()
        dlg.sum_edit.setText(f"SHA256: {digest.upper()}")
        dlg.sum_button.click()
        loop.run_until_complete(wait_until(dlg.install_button.isEnabled))
        assert core.settings.current.setup_entered_sums == {
            cat.latest.archive.url: {"sha256": digest, "name": "ComfyUI-test2.zip"}}
        assert dlg.components.topLevelItem(0).text(3) == "entered by you"
        assert dlg.components.topLevelItem(2).text(3) == "pinned in the app"
        assert dlg.sum_box.isHidden() and not dlg.problems_label.isVisible()
        dlg.close()
    loop.run_until_complete(tasks.cancel_all())


def test_update_button_updates_a_running_managed_install_and_keeps_its_images(qtbot, loop, core, tmp_path):
    from studio_core.setup import first_start, installer as inst
    from studio_core.setup.plan import make_plan
    from studio_gui.tasks import TaskOwner
    from tests.setup_fakes import FakeEnv, release_zip

    tasks = TaskOwner()
    folder = tmp_path / "ComfyUI"
    env = FakeEnv()
    with SetupMirror() as mirror:
        data = catalog_dict(mirror, archive=release_zip("1"), archive2=release_zip("2"), model=fake_safetensors(),
                            pose=fake_safetensors(10_000))
        only_v1 = Catalog.from_dict({**data, "comfyui": data["comfyui"][:1]})
        loop.run_until_complete(inst.Installer(make_plan(None, 10**12, only_v1, folder), only_v1, env=env).install())
        (folder / "output/sprite_00001_.png").write_bytes(b"\x89PNG mine")
        first_start.register(core.settings, folder)
        loop.run_until_complete(core.comfy_server.start())  # the old one runs: the update must stop it first
        dlg = wizard(core, tasks, catalog=Catalog.from_dict(data), env=env, gpu_reader=lambda: None, folder=folder)
        qtbot.addWidget(dlg)
        dlg.show()
        loop.run_until_complete(wait_until(dlg.update_button.isVisible))
        assert dlg.update_button.text() == "Update to 0.0.2-test" and not dlg.install_button.isEnabled()
        assert "0.0.1-test is already installed" in dlg.problems_label.text()
        dlg.update_button.click()
        loop.run_until_complete(wait_until(lambda: dlg.pages.currentIndex() == 2, timeout=60))
    assert dlg.result_label.text().startswith("✔ ComfyUI 0.0.2-test is installed and running"), dlg.result_label.text()
    assert inst.read_manifest(folder)["comfyui"] == "0.0.2-test"
    assert (folder / "output/sprite_00001_.png").read_bytes() == b"\x89PNG mine"
    assert core.comfy_server.running
    dlg.close()
    loop.run_until_complete(core.comfy_server.stop())
    loop.run_until_complete(tasks.cancel_all())
