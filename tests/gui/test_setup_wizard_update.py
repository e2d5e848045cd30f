"""The wizard's Update button for git and portable installs: what it says, and that it works."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest

from studio_core.setup import catalog as catalog_mod
from studio_core.setup.catalog import Catalog
from tests.gui.conftest import wait_until
from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def wizard(core, tasks, **kw):
    from studio_gui.setup_wizard import SetupWizard

    return SetupWizard(core, tasks=tasks, **kw)


@needs_git
def test_update_button_updates_a_git_install_to_the_next_pinned_commit(qtbot, loop, core, tmp_path):
    from studio_core.setup import first_start, installer as inst
    from studio_core.setup.plan import make_plan
    from studio_gui.tasks import TaskOwner
    from tests.setup_fakes import FakeEnv
    from tests.setup_sources import git, git_release, git_repo

    tasks = TaskOwner()
    folder = tmp_path / "ComfyUI"
    env = FakeEnv()
    bare, c1 = git_repo(tmp_path, "v1", version="git-1")
    with SetupMirror() as mirror:
        data = catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=fake_safetensors(),
                            pose=fake_safetensors(10_000))
        data["comfyui"][0]["git"] = {"url": bare.as_uri(), "tag": "v1", "commit": c1, "size_bytes": 100_000}
        only_v1 = Catalog.from_dict({**data, "comfyui": data["comfyui"][:1]})
        loop.run_until_complete(inst.Installer(make_plan(None, 10**12, only_v1, folder, platform="linux",
                                                         git_found=True), only_v1, env=env).install())
        (folder / "output").mkdir(exist_ok=True)
        (folder / "output/sprite_00001_.png").write_bytes(b"\x89PNG mine")
        first_start.register(core.settings, folder)
        c2 = git_release(tmp_path, bare, "v2", "git-2")
        data["comfyui"][1]["git"] = {"url": bare.as_uri(), "tag": "v2", "commit": c2, "size_bytes": 100_000}
        dlg = wizard(core, tasks, catalog=Catalog.from_dict(data), env=env, gpu_reader=lambda: None, folder=folder,
                     platform="linux", git_finder=lambda: "git")
        qtbot.addWidget(dlg)
        dlg.show()
        loop.run_until_complete(wait_until(dlg.update_button.isVisible))
        assert dlg.update_button.text() == "Update to 0.0.2-test" and dlg.update_button.isEnabled()
        said = dlg.problems_label.text()
        assert "0.0.1-test → 0.0.2-test" in said and f"tag v2, which must be commit {c2[:12]}" in said, said
        dlg.update_button.click()
        loop.run_until_complete(wait_until(lambda: dlg.pages.currentIndex() == 2, timeout=60))
    assert dlg.result_label.text().startswith("✔ ComfyUI 0.0.2-test is installed and running"), dlg.result_label.text()
    assert "your images" in dlg.result_label.text()
    assert git("rev-parse", "HEAD", cwd=folder) == c2
    assert (folder / "output/sprite_00001_.png").read_bytes() == b"\x89PNG mine"
    dlg.close()
    loop.run_until_complete(core.comfy_server.stop())
    loop.run_until_complete(tasks.cancel_all())


def test_a_portable_install_of_the_shipped_version_is_told_there_is_no_newer_pinned_version(qtbot, loop, core,
                                                                                           tmp_path):
    from studio_core.setup import installer as inst
    from studio_gui.tasks import TaskOwner

    shipped = catalog_mod.load()
    folder = tmp_path / "ComfyUI"
    folder.mkdir()
    (folder / inst.MANIFEST).write_text(json.dumps({"manifest": 1, "comfyui": shipped.latest.version,
                                                    "source": "portable", "build": "nvidia",
                                                    "comfy_dir": "ComfyUI", "files": {}}))
    tasks = TaskOwner()
    dlg = wizard(core, tasks, catalog=shipped, gpu_reader=lambda: None, folder=folder, platform="win32")
    qtbot.addWidget(dlg)
    dlg.show()
    loop.run_until_complete(wait_until(dlg.repair_button.isVisible))
    assert f"No newer pinned version of ComfyUI than {shipped.latest.version}" in dlg.problems_label.text()
    assert not dlg.update_button.isVisible()
    # The same install with a (test-only) second portable release is offered it, with its size and sum source.
    nxt = dataclasses.replace(shipped.latest, version="9.9.9", changes="A test release.")
    two = dataclasses.replace(shipped, releases=(*shipped.releases, nxt))
    dlg.close()
    dlg = wizard(core, tasks, catalog=two, gpu_reader=lambda: None, folder=folder, platform="win32")
    qtbot.addWidget(dlg)
    dlg.show()
    loop.run_until_complete(wait_until(dlg.update_button.isVisible))
    said = dlg.problems_label.text()
    assert dlg.update_button.text() == "Update to 9.9.9"
    assert "ComfyUI_windows_portable_nvidia.7z, 2.0 GB" in said and "third-party pin" in said, said
    dlg.close()
    loop.run_until_complete(tasks.cancel_all())
