"""Local setup against a loopback mirror: resume, wrong sums, full disk, cancel, second install, repair.

The Python environment step is replaced here by ``FakeEnv`` (it only makes ``venv/bin/python``)
so these stay fast; tests/core/test_setup_real_install.py runs the real one and starts the
server.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
from collections import namedtuple

import pytest

from studio_core.setup import download, installer as inst
from studio_core.setup.catalog import Catalog
from studio_core.setup.errors import (AlreadyInstalled, ChecksumMismatch, DiskFull, DownloadFailed, FolderInUse,
                                      NotEnoughSpace, NotPinned)
from studio_core.setup.plan import make_plan
from tests.conftest import run_async
from tests.setup_fakes import FAKE_TORCH_VERSION, FakeEnv
from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors

Usage = namedtuple("Usage", "total used free")
PLENTY = lambda _p: Usage(10**13, 0, 10**12)  # noqa: E731
MODEL = fake_safetensors(600_000, seed=1)
POSE = fake_safetensors(200_000, seed=2)


def small_archive() -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("ComfyUI-x/main.py", "print('hi')\n")
        zf.writestr("ComfyUI-x/nodes.py", "# nodes\n" * 100)
        zf.writestr("ComfyUI-x/comfy/__init__.py", "")
        zf.writestr("ComfyUI-x/models/checkpoints/put_checkpoints_here", "")
    return buf.getvalue()


@pytest.fixture
def mirror():
    with SetupMirror() as m:
        yield m


def setup(mirror, tmp_path, *, model_sha=None, archive=None):
    cat = Catalog.from_dict(catalog_dict(mirror, archive=archive or small_archive(), model=MODEL, pose=POSE,
                                         model_sha=model_sha))
    folder = tmp_path / "disk" / "ComfyUI"
    plan = make_plan(None, 10**12, cat, folder)
    return cat, plan, folder


def leftovers(tmp_path) -> list[str]:
    disk = tmp_path / "disk"
    return sorted(p.name for p in disk.iterdir()) if disk.exists() else []


def test_full_install_places_everything_and_writes_the_manifest_last(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    events = []
    env = FakeEnv()
    run_async(inst.Installer(plan, cat, env=env, on_event=events.append, disk_usage=PLENTY).install())
    assert (folder / "main.py").exists() and (folder / "comfy").is_dir()  # top folder stripped
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert (folder / "models/controlnet/pose.safetensors").read_bytes() == POSE
    manifest = inst.read_manifest(folder)
    assert manifest["comfyui"] == "0.0.2-test" and manifest["files"]["main.py"] == hashlib.sha256(
        b"print('hi')\n").hexdigest()
    assert leftovers(tmp_path) == ["ComfyUI"]  # the staging folder is gone
    progress = [e for e in events if isinstance(e, inst.DownloadProgress)]
    assert progress[-1].overall.done == progress[-1].overall.total == sum(f.size_bytes for f in plan.downloads)
    assert {e.name for e in progress} == {f.name for f in plan.downloads}
    assert any(isinstance(e, inst.LogLine) and "--index-url file:///opt/pypi-more/simple" in e.text for e in events)


def test_connection_dropped_mid_file_is_resumed_not_restarted(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    mirror.drop_after["/models/tiny.safetensors"] = 250_000
    run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY, retry_delay=0).install())
    hits = [h for h in mirror.hits if h.path == "/models/tiny.safetensors"]
    assert [(h.range, h.status) for h in hits] == [(None, 200), ("bytes=250000-", 206)]
    assert mirror.sent("/models/tiny.safetensors") == len(MODEL)  # not a byte sent twice
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL


def test_trying_again_after_the_network_gave_up_continues_the_part(mirror, tmp_path, monkeypatch):
    cat, plan, folder = setup(mirror, tmp_path)
    monkeypatch.setattr(download, "RETRIES", 2)
    mirror.drop_after["/models/tiny.safetensors"] = 100_000
    mirror.offline_after_drop = True
    with pytest.raises(DownloadFailed) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY, retry_delay=0).install())
    mirror.offline = False  # the cable is back
    assert "Try again" in err.value.user_message and "tiny.safetensors" in err.value.user_message
    assert not folder.exists()  # nothing that looks installed
    assert (inst.staging_for(folder) / "downloads/tiny.safetensors.part").stat().st_size == 100_000
    run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY, retry_delay=0).install())
    hits = [h for h in mirror.hits if h.path == "/models/tiny.safetensors"]
    assert [(h.range, h.status) for h in hits] == [(None, 200), ("bytes=100000-", 0), ("bytes=100000-", 0),
                                                   ("bytes=100000-", 206)]
    assert mirror.sent("/models/tiny.safetensors") == len(MODEL)
    assert mirror.sent("/comfy/ComfyUI-test2.zip") == plan.downloads[0].size_bytes  # the archive was not fetched again


def test_a_server_that_ignores_range_makes_the_file_start_over(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    mirror.drop_after["/models/tiny.safetensors"] = 100_000
    mirror.ignore_range = True
    run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY, retry_delay=0).install())
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL


def test_wrong_sum_is_refused_named_and_nothing_installed(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path, model_sha="0" * 64)
    env = FakeEnv()
    with pytest.raises(ChecksumMismatch) as err:
        run_async(inst.Installer(plan, cat, env=env, disk_usage=PLENTY).install())
    assert "tiny.safetensors" in err.value.user_message
    assert not folder.exists() and env.calls == 0
    assert not (inst.staging_for(folder) / "downloads/tiny.safetensors.part").exists()


def test_an_unpinned_file_is_never_downloaded(mirror, tmp_path):
    data = catalog_dict(mirror, archive=small_archive(), model=MODEL, pose=POSE)
    data["models"][0]["file"]["sha256"] = None
    cat = Catalog.from_dict(data)
    plan = make_plan(None, 10**12, cat, tmp_path / "disk" / "ComfyUI")
    assert not plan.can_install
    with pytest.raises(NotPinned) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert "tiny.safetensors" in err.value.user_message
    assert mirror.hits == [] and leftovers(tmp_path) == []


def test_not_enough_space_is_said_before_anything_is_downloaded(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    tiny_disk = lambda _p: Usage(10**9, 10**9 - 1000, 1000)  # noqa: E731  (a statvfs stub)
    with pytest.raises(NotEnoughSpace) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=tiny_disk).install())
    assert "Nothing was downloaded" in err.value.user_message
    assert mirror.hits == [] and leftovers(tmp_path) == []


def test_disk_filling_up_during_the_download_removes_the_staging_folder(mirror, tmp_path, monkeypatch):
    cat, plan, folder = setup(mirror, tmp_path)
    real = download._append

    def append(f, hasher, chunk):
        if f.name.endswith("tiny.safetensors.part"):
            raise OSError(errno.ENOSPC, "No space left on device")
        real(f, hasher, chunk)

    monkeypatch.setattr(download, "_append", append)
    with pytest.raises(DiskFull) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert "tiny.safetensors" in err.value.user_message and "removed" in err.value.user_message
    assert leftovers(tmp_path) == []


def test_free_space_shrinking_between_files_stops_and_cleans_up(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    calls = []

    def shrinking(_p):
        calls.append(1)  # enough for the first check and the archive, then the disk is nearly full
        return Usage(10**12, 0, 10**12 if len(calls) <= 2 else 10)

    with pytest.raises(DiskFull):
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=shrinking).install())
    assert leftovers(tmp_path) == []


def test_cancel_leaves_nothing(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)

    async def go():
        task: asyncio.Task | None = None

        def on_event(e):
            if isinstance(e, inst.DownloadProgress) and e.name == "tiny.safetensors":
                task.cancel()

        task = asyncio.ensure_future(inst.Installer(plan, cat, env=FakeEnv(), on_event=on_event,
                                                    disk_usage=PLENTY).install())
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(go())
    assert leftovers(tmp_path) == []


def test_second_install_into_the_same_folder_is_refused_then_repair_fixes_it(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    with pytest.raises(AlreadyInstalled) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert "Repair" in err.value.user_message
    before = len(mirror.hits)
    assert run_async(inst.repair(folder, cat)) == inst.RepairReport(checked=6, fixed=(), torch=FAKE_TORCH_VERSION)
    assert len(mirror.hits) == before  # nothing fetched when everything checks out
    (folder / "nodes.py").write_text("tampered")
    (folder / "models/checkpoints/tiny.safetensors").unlink()
    report = run_async(inst.repair(folder, cat, retry_delay=0))
    assert set(report.fixed) == {"nodes.py", "models/checkpoints/tiny.safetensors"}
    assert (folder / "nodes.py").read_text() == "# nodes\n" * 100
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert leftovers(tmp_path) == ["ComfyUI"]


def test_a_folder_with_other_files_is_not_touched(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(FolderInUse):
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert os.listdir(folder) == ["notes.txt"] and mirror.hits == []


def test_update_offer_names_the_next_release(mirror, tmp_path):
    data = catalog_dict(mirror, archive=small_archive(), model=MODEL, pose=POSE)
    cat = Catalog.from_dict(data)
    folder = tmp_path / "disk" / "ComfyUI"
    folder.mkdir(parents=True)
    (folder / inst.MANIFEST).write_text(json.dumps({"manifest": 1, "comfyui": "0.0.1-test", "files": {}}))
    offer = inst.update_offer(folder, cat)
    assert offer.version == "0.0.2-test" and offer.changes == "the same files again"
    (folder / inst.MANIFEST).write_text(json.dumps({"manifest": 1, "comfyui": "0.0.2-test", "files": {}}))
    assert inst.update_offer(folder, cat) is None


def test_http_error_names_the_status(mirror, tmp_path):
    cat, plan, folder = setup(mirror, tmp_path)
    del mirror.files["/models/pose.safetensors"]
    with pytest.raises(DownloadFailed) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert "404" in err.value.user_message and "pose.safetensors" in err.value.user_message
    assert not folder.exists()
