"""Updating a finished install to the next pinned release, against the loopback mirror.

Both releases are small ComfyUI-shaped zips (tests/setup_fakes.py) whose main.py is a real
HTTP server answering /system_stats with its version, started by the real ManagedServer from
the install's own venv; the broken one exits at once, as a release with a missing
dependency does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections import namedtuple

import httpx
import pytest

from studio_core.comfy_server import ManagedServer, inspect_folder
from studio_core.setup import installer as inst, update as upd
from studio_core.setup.catalog import Catalog
from studio_core.setup.errors import NotPinned, UpdateRolledBack
from studio_core.setup.plan import make_plan
from tests.conftest import run_async
from tests.setup_fakes import FakeEnv, release_zip
from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors

Usage = namedtuple("Usage", "total used free")
PLENTY = lambda _p: Usage(10**13, 0, 10**12)  # noqa: E731
MODEL = fake_safetensors(300_000, seed=5)
POSE = fake_safetensors(50_000, seed=6)
OUTPUT_PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40


@pytest.fixture
def mirror():
    with SetupMirror() as m:
        yield m


def installed_v1(mirror, tmp_path, *, v2: bytes):
    """Version 1 installed from the mirror (a catalog that knew only it), then a catalog that offers v2."""
    data = catalog_dict(mirror, archive=release_zip("1"), archive2=v2, model=MODEL, pose=POSE)
    both = Catalog.from_dict(data)
    only_v1 = Catalog.from_dict({**data, "comfyui": data["comfyui"][:1]})
    folder = tmp_path / "disk" / "ComfyUI"
    env = FakeEnv()
    run_async(inst.Installer(make_plan(None, 10**12, only_v1, folder), only_v1, env=env, disk_usage=PLENTY).install())
    # What a user has after a while: a picture, their own node, an edited release file, settings.
    (folder / "output/studio_00001_.png").write_bytes(OUTPUT_PNG)
    (folder / "custom_nodes/my_pixel_nodes").mkdir()
    (folder / "custom_nodes/my_pixel_nodes/__init__.py").write_text("NODE_CLASS_MAPPINGS = {}\n")
    (folder / "models/configs/v1-inference.yaml").write_text("# my tuned config\n")
    (folder / "user/default").mkdir(parents=True)
    (folder / "user/default/comfy.settings.json").write_text('{"Comfy.Theme": "dark"}')
    (folder / "extra_model_paths.yaml").write_text("a1111:\n  base_path: D:/sd\n")
    return both, folder, env


def managed(folder, tmp_path) -> ManagedServer:
    return ManagedServer(lambda: inspect_folder(folder), log_dir=tmp_path / "logs", max_restarts=0,
                         start_timeout=60)


def version_of(url: str) -> str:
    return httpx.get(url + "/system_stats").json()["system"]["comfyui_version"]


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.parent.iterdir())


def test_update_swaps_in_the_new_release_and_keeps_models_images_and_the_users_files(mirror, tmp_path):
    cat, folder, env = installed_v1(mirror, tmp_path, v2=release_zip("2", requirements="torch\nPillow\nav\n"))
    assert inst.update_offer(folder, cat).version == "0.0.2-test"
    server = managed(folder, tmp_path)
    events = []

    async def go():
        try:
            report = await upd.update(folder, cat, prove=server.start, env=env, on_event=events.append,
                                      disk_usage=PLENTY)
            return report, version_of(server.url)
        finally:
            await server.stop()

    report, answered = run_async(go())
    assert answered == "2"  # the new release is what started
    assert (folder / "comfy/version.py").read_text() == "VERSION = '2'\n"
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert (folder / "models/controlnet/pose.safetensors").read_bytes() == POSE
    assert (folder / "output/studio_00001_.png").read_bytes() == OUTPUT_PNG
    assert (folder / "custom_nodes/my_pixel_nodes/__init__.py").exists()
    assert (folder / "user/default/comfy.settings.json").read_text() == '{"Comfy.Theme": "dark"}'
    assert (folder / "extra_model_paths.yaml").exists()
    # An untouched release file takes the new version; the one the user edited stays theirs.
    assert (folder / "custom_nodes/websocket_image_save.py").read_text() == "# example node 2\n"
    assert (folder / "models/configs/v1-inference.yaml").read_text() == "# my tuned config\n"
    assert report.kept_edited == ("models/configs/v1-inference.yaml",)
    assert report.requirements_changed and env.requirement_runs == 1 and env.calls == 1  # venv moved, not rebuilt
    manifest = inst.read_manifest(folder)
    assert manifest["comfyui"] == "0.0.2-test" and manifest["updated_from"] == "0.0.1-test"
    assert manifest["files"]["models/checkpoints/tiny.safetensors"] == hashlib.sha256(MODEL).hexdigest()
    assert "models/configs/v1-inference.yaml" not in manifest["files"]  # repair won't "fix" the user's edit
    assert leftovers(folder) == ["ComfyUI"]  # no backup, no staging
    assert inst.update_offer(folder, cat) is None
    assert any(isinstance(e, inst.StepStarted) and e.step == "start" for e in events)
    assert run_async(inst.repair(folder, cat)).fixed == ()  # the new manifest matches what is on disk


def test_an_update_whose_server_does_not_start_is_rolled_back(mirror, tmp_path):
    cat, folder, env = installed_v1(mirror, tmp_path, v2=release_zip("2", broken=True))
    before = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
              if p.is_file() and "venv" not in p.relative_to(folder).parts}
    server = managed(folder, tmp_path)
    with pytest.raises(UpdateRolledBack) as err:
        run_async(upd.update(folder, cat, prove=server.start, env=env, disk_usage=PLENTY))
    text = err.value.user_message
    assert "0.0.2-test did not start" in text and "0.0.1-test was put back" in text
    assert "comfy_new_dependency" in text  # the new server's own last words
    after = {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
             if p.is_file() and "venv" not in p.relative_to(folder).parts}
    assert after == before  # every file as it was, the model and the picture included
    assert inst.read_manifest(folder)["comfyui"] == "0.0.1-test"
    assert leftovers(folder) == ["ComfyUI"]

    async def old_one_still_runs():
        try:
            await server.start()
            return version_of(server.url)
        finally:
            await server.stop()

    assert run_async(old_one_still_runs()) == "1"


def test_an_update_cut_off_after_the_swap_is_undone_on_the_next_open(mirror, tmp_path, monkeypatch):
    cat, folder, env = installed_v1(mirror, tmp_path, v2=release_zip("2"))

    class PowerCut(BaseException):
        pass

    async def cut():
        raise PowerCut

    with monkeypatch.context() as m:
        m.setattr(upd, "_undo_and_clean", lambda journal, folder: None)  # the process died: nothing ran after
        with pytest.raises(PowerCut):
            run_async(upd.update(folder, cat, prove=cut, env=env, disk_usage=PLENTY))
    assert upd.backup_for(folder).exists() and inst.read_manifest(folder)["comfyui"] == "0.0.2-test"
    message = upd.recover(folder)
    assert message and "put back" in message
    assert inst.read_manifest(folder)["comfyui"] == "0.0.1-test"
    assert (folder / "output/studio_00001_.png").read_bytes() == OUTPUT_PNG
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert (folder / "custom_nodes/websocket_image_save.py").read_text() == "# example node 1\n"
    assert not upd.backup_for(folder).exists()
    assert json.loads((folder / inst.MANIFEST).read_text())["files"]


def test_update_needs_a_sum_for_the_new_archive(mirror, tmp_path):
    cat, folder, env = installed_v1(mirror, tmp_path, v2=release_zip("2"))
    data_v2 = cat.releases[1]
    unpinned = dataclasses.replace(cat, releases=(cat.releases[0], dataclasses.replace(
        data_v2, archive=dataclasses.replace(data_v2.archive, sha256=None))))
    hits = len(mirror.hits)
    with pytest.raises(NotPinned):
        run_async(upd.update(folder, unpinned, prove=lambda: None, env=env, disk_usage=PLENTY))
    assert len(mirror.hits) == hits and inst.read_manifest(folder)["comfyui"] == "0.0.1-test"


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_kept_folder_linked_to_another_disk_is_carried_as_a_link_and_not_written_into(mirror, tmp_path):
    cat, folder, env = installed_v1(mirror, tmp_path, v2=release_zip("2"))
    elsewhere = tmp_path / "big-disk" / "output"
    shutil.move(folder / "output", elsewhere)
    (elsewhere / "_output_images_will_be_put_here").unlink()  # the user tidied it: the update must not put it back
    os.symlink(elsewhere, folder / "output")
    server = managed(folder, tmp_path)

    async def go():
        try:
            return await upd.update(folder, cat, prove=server.start, env=env, disk_usage=PLENTY)
        finally:
            await server.stop()

    run_async(go())
    assert (folder / "output").is_symlink() and (folder / "output/studio_00001_.png").read_bytes() == OUTPUT_PNG
    assert sorted(p.name for p in elsewhere.iterdir()) == ["studio_00001_.png"]
