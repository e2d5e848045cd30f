"""The two verifiable ComfyUI sources: the Windows portable .7z (pinned sum) and a pinned git commit.

The platform is passed to the plan (never read from sys.platform), so the Windows install runs
here too: the loopback mirror serves a portable-shaped .7z (tests/setup_sources.py) whose
``python_embeded/python.exe`` is a launcher for this interpreter, so the installed folder is
really started by ManagedServer and answers /system_stats. The git source clones a bare repo
made in the test through a file:// URL.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections import namedtuple

import httpx
import pytest

from studio_core.comfy_server import ManagedServer, inspect_folder
from studio_core.setup import archive7z, catalog as catalog_mod, installer as inst
from studio_core.setup.catalog import Catalog
from studio_core.setup.errors import BadArchive, ChecksumMismatch, GitFailed, GitVerifyFailed, UpdateFailed
from studio_core.setup.gpu_facts import GpuFacts
from studio_core.setup.plan import GIB, make_plan
from studio_core.setup.pyenv import venv_python
from tests.conftest import run_async
from tests.setup_fakes import FakeEnv
from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors
from tests.setup_sources import PORTABLE_TORCH, TOP, git_repo, move_tag, portable_7z, with_traversal

Usage = namedtuple("Usage", "total used free")
PLENTY = lambda _p: Usage(10**13, 0, 10**12)  # noqa: E731
MODEL = fake_safetensors(300_000, seed=21)
POSE = fake_safetensors(30_000, seed=22)
SIX_GB = GpuFacts("NVIDIA GeForce RTX 3050", 6144, "552.22", (12, 4))
SHIPPED = catalog_mod.load()
posix_only = pytest.mark.skipif(os.name == "nt", reason="the python_embeded stand-in is a POSIX shell launcher")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture
def mirror():
    with SetupMirror() as m:
        yield m


def leftovers(disk) -> list[str]:
    return sorted(p.name for p in disk.iterdir()) if disk.exists() else []


# -- the plan with the shipped catalog --------------------------------------------------------------

def test_windows_nvidia_plan_uses_the_pinned_portable_build_and_no_pip():
    plan = make_plan(SIX_GB, 500 * GIB, SHIPPED, "C:/Users/me/ComfyUI", platform="win32", git_found=False)
    assert plan.can_install, plan.problems
    assert plan.source.kind == "portable" and plan.source.build == "nvidia"
    asset = plan.downloads[0]
    assert asset.name == "ComfyUI_windows_portable_nvidia.7z" and asset.size_bytes == 2133107036
    assert asset.sha256 == "4a221588979b96b8244e0e50b2edca03af732acae1deba69d60aa3b4d60b9dba"
    assert asset.url.endswith("/releases/download/v0.33.1/ComfyUI_windows_portable_nvidia.7z")
    assert "third-party" in asset.sha256_from and "72865f4f27eaf5396f8f36370e0a2be3a9a090ee" in asset.sha256_from
    comfy, python = plan.components[:2]
    assert "(portable, NVIDIA)" in comfy.title and comfy.sum_source == "pinned in the app (third-party list)"
    assert python.detail == "included" and "python_embeded" in python.title and python.size_bytes == 0
    assert plan.model.family == "sd15" and plan.lowvram
    # The .7z is counted, and what it unpacks to (about 2.5 times its size).
    assert plan.disk_needed > asset.size_bytes * 3.5


@pytest.mark.parametrize("build, name", [("amd", "ComfyUI_windows_portable_amd.7z"),
                                         ("intel", "ComfyUI_windows_portable_intel.7z")])
def test_windows_without_nvidia_runs_on_the_processor_unless_the_user_names_an_amd_or_intel_card(build, name):
    cpu = make_plan(None, 500 * GIB, SHIPPED, "C:/ComfyUI", platform="win32")
    assert cpu.source.build == "nvidia" and cpu.cpu_only and cpu.can_install
    assert any("--cpu" in n and "processor" in n for n in cpu.notes)
    assert any("minutes" in n for n in cpu.notes)
    chosen = make_plan(None, 500 * GIB, SHIPPED, "C:/ComfyUI", platform="win32", windows_build=build)
    assert chosen.downloads[0].name == name and chosen.downloads[0].sha256 and chosen.can_install
    assert not chosen.cpu_only and "portable build will use your" in chosen.device
    assert chosen.model.family == "sd15"


def test_linux_plan_fetches_the_pinned_commit_with_git():
    plan = make_plan(card := GpuFacts("NVIDIA RTX", 8192, "570.10", (12, 8)), 500 * GIB, SHIPPED, "/x",
                     platform="linux", git_found=True)
    assert card and plan.can_install, plan.problems
    assert plan.source.kind == "git" and plan.source.git.commit == "72865f4f27eaf5396f8f36370e0a2be3a9a090ee"
    assert plan.source.git.tag == "v0.33.1"
    comfy = plan.components[0]
    assert comfy.sum_source == "verified by git against commit 72865f4…"
    assert plan.components[1].sum_source == "checked by pip against the index"
    assert [d.dest.split("/")[1] for d in plan.downloads] == ["checkpoints", "controlnet"]  # no archive download


def test_without_git_the_plan_says_so_and_offers_the_pasted_sum_path():
    plan = make_plan(None, 500 * GIB, SHIPPED, "/x", platform="darwin", git_found=False)
    assert plan.source.kind == "zip" and not plan.can_install
    assert any("git was not found" in n for n in plan.notes)
    assert any(SHIPPED.latest.archive.name in p and "Paste the SHA-256" in p for p in plan.problems)
    entered = SHIPPED.with_user_sums({SHIPPED.latest.archive.url: "ab" * 32})
    ok = make_plan(None, 500 * GIB, entered, "/x", platform="darwin", git_found=False)
    assert ok.can_install and ok.components[0].sum_source == "entered by you"


def test_a_git_only_release_without_git_is_refused_in_words(mirror, tmp_path):
    data = catalog_dict(mirror, archive=b"", model=MODEL, pose=POSE)
    data["comfyui"][-1]["git"] = {"url": "file:///nowhere.git", "tag": "v1", "commit": "a" * 40, "size_bytes": 1000}
    del data["comfyui"][-1]["archive"]
    plan = make_plan(None, 10**12, Catalog.from_dict(data), tmp_path / "C", platform="linux", git_found=False)
    assert not plan.can_install and any("git is not installed" in p for p in plan.problems)


def test_a_catalog_commit_that_is_not_a_full_commit_id_is_rejected():
    with pytest.raises(ValueError):
        catalog_mod.GitPin.from_dict({"url": "u", "tag": "v1", "commit": "72865f4"})


# -- Windows portable install from the mirror ---------------------------------------------------------

def portable_catalog(mirror, archive: bytes, *, sha: str | None = None) -> Catalog:
    data = catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=MODEL, pose=POSE)
    data["comfyui"][-1]["windows_portable"] = {"nvidia": {
        "name": "ComfyUI_windows_portable_nvidia.7z", "url": mirror.add("/rel/portable_nvidia.7z", archive),
        "size_bytes": len(archive), "sha256": sha or hashlib.sha256(archive).hexdigest(), "licence": "GPL-3.0",
        "source": mirror.url("/rel/")}}
    return Catalog.from_dict(data)


@posix_only
def test_portable_install_verifies_unpacks_starts_and_repairs(mirror, tmp_path):
    cat = portable_catalog(mirror, portable_7z(tmp_path, filler=os.urandom(9 * 1024 * 1024)))
    folder = tmp_path / "disk" / "ComfyUI"
    plan = make_plan(SIX_GB, 10**12, cat, folder, platform="win32")
    assert plan.source.kind == "portable" and plan.can_install, plan.problems
    env, events = FakeEnv(), []
    run_async(inst.Installer(plan, cat, env=env, on_event=events.append, disk_usage=PLENTY).install())
    assert env.calls == 0  # no venv, no pip: the portable build brings its Python
    manifest = inst.read_manifest(folder)
    assert manifest["source"] == "portable" and manifest["build"] == "nvidia" and manifest["comfy_dir"] == "ComfyUI"
    assert manifest["files"]["ComfyUI/main.py"] == hashlib.sha256((folder / "ComfyUI/main.py").read_bytes()).hexdigest()
    assert (folder / "ComfyUI/models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert (folder / "ComfyUI/models/controlnet/pose.safetensors").read_bytes() == POSE
    assert not (folder / TOP).exists() and not venv_python(folder).exists()  # top folder stripped, no venv
    assert leftovers(tmp_path / "disk") == ["ComfyUI"]
    unpacked = [e for e in events if isinstance(e, inst.UnpackProgress)]
    assert len(unpacked) >= 2 and unpacked[-1].done == unpacked[-1].total > 9 * 1024 * 1024
    assert inst.comfy_root(folder) == folder / "ComfyUI"

    async def start() -> dict:
        spec = inspect_folder(folder)
        assert spec.kind == "portable" and spec.argv[0] == str(folder / "python_embeded/python.exe")
        server = ManagedServer(spec, log_dir=tmp_path / "logs", flags=("--cpu",), max_restarts=0)
        try:
            url = await server.start()
            async with httpx.AsyncClient() as client:
                return (await client.get(url + "/system_stats")).json()
        finally:
            await server.stop()

    assert run_async(start())["system"]["comfyui_version"] == "0.0.9-portable"
    # Repair: the portable build's own files come back from the (re-downloaded, re-checked) .7z.
    assert run_async(inst.repair(folder, cat)).torch == PORTABLE_TORCH
    (folder / "ComfyUI/nodes.py").write_text("tampered")
    shutil.rmtree(folder / "python_embeded/Lib/site-packages/torch")
    (folder / "ComfyUI/models/checkpoints/tiny.safetensors").unlink()
    report = run_async(inst.repair(folder, cat, retry_delay=0))
    assert set(report.fixed) == {"ComfyUI/nodes.py", "python_embeded/Lib/site-packages/torch/__init__.py",
                                 "python_embeded/Lib/site-packages/torch/lib.bin",
                                 "ComfyUI/models/checkpoints/tiny.safetensors"}
    assert report.torch == PORTABLE_TORCH and (folder / "ComfyUI/nodes.py").read_text() == "# nodes\n" * 50
    assert leftovers(tmp_path / "disk") == ["ComfyUI"]
    # An update in place is not offered for the portable layout, and refused in words if asked.
    assert inst.update_offer(folder, cat) is None
    from studio_core.setup import update as upd

    async def never() -> None:
        raise AssertionError("not started")

    with pytest.raises(UpdateFailed) as err:
        run_async(upd.update(folder, cat, prove=never))
    assert "portable" in err.value.user_message


def test_portable_archive_with_a_wrong_sum_is_refused_and_nothing_installed(mirror, tmp_path):
    cat = portable_catalog(mirror, portable_7z(tmp_path), sha="0" * 64)
    folder = tmp_path / "disk" / "ComfyUI"
    plan = make_plan(SIX_GB, 10**12, cat, folder, platform="win32")
    with pytest.raises(ChecksumMismatch) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert "ComfyUI_windows_portable_nvidia.7z" in err.value.user_message
    assert not folder.exists()
    assert not (inst.staging_for(folder) / "downloads/ComfyUI_windows_portable_nvidia.7z.part").exists()


def test_portable_archive_with_a_member_leaving_the_folder_is_refused_before_anything_is_written(mirror, tmp_path):
    good = portable_7z(tmp_path, extra={f"{TOP}/xx/evil.txt": b"owned"})
    evil = with_traversal(good, f"{TOP}/xx/evil.txt", f"{TOP}/../evil.txt")
    cat = portable_catalog(mirror, evil)
    folder = tmp_path / "disk" / "ComfyUI"
    plan = make_plan(SIX_GB, 10**12, cat, folder, platform="win32")
    with pytest.raises(BadArchive) as err:
        run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert "outside the install folder" in err.value.user_message and "../evil.txt" in err.value.user_message
    assert not folder.exists()
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (inst.staging_for(folder) / "comfyui").exists()  # not even the safe members were unpacked


@posix_only
def test_an_archive_holding_a_link_is_refused(tmp_path):
    import py7zr

    (tmp_path / "t/ComfyUI").mkdir(parents=True)
    (tmp_path / "t/ComfyUI/main.py").write_text("x")
    os.symlink("main.py", tmp_path / "t/ComfyUI/link")  # harmless here; a link can point anywhere once unpacked
    out = tmp_path / "l.7z"
    with py7zr.SevenZipFile(out, "w") as z:
        z.writeall(tmp_path / "t", "top")
    with pytest.raises(BadArchive) as err:
        archive7z.unpack(out, tmp_path / "dest")
    assert "a link" in err.value.user_message and not (tmp_path / "dest").exists()


def test_cancel_while_unpacking_leaves_nothing(mirror, tmp_path):
    cat = portable_catalog(mirror, portable_7z(tmp_path, filler=os.urandom(24 * 1024 * 1024)))
    folder = tmp_path / "disk" / "ComfyUI"
    plan = make_plan(SIX_GB, 10**12, cat, folder, platform="win32")

    async def go():
        task: asyncio.Task | None = None

        def on_event(e):
            if isinstance(e, inst.UnpackProgress) and task is not None:
                task.cancel()

        task = asyncio.ensure_future(inst.Installer(plan, cat, env=FakeEnv(), on_event=on_event,
                                                    disk_usage=PLENTY).install())
        with pytest.raises(asyncio.CancelledError):
            await task

    run_async(go())
    assert leftovers(tmp_path / "disk") == []


# -- git --------------------------------------------------------------------------------------------

def git_catalog(mirror, url: str, commit: str, tag: str) -> Catalog:
    data = catalog_dict(mirror, archive=b"PK\x05\x06" + bytes(18), model=MODEL, pose=POSE)
    data["comfyui"][-1]["git"] = {"url": url, "tag": tag, "commit": commit, "size_bytes": 100_000,
                                  "licence": "GPL-3.0", "source": url}
    return Catalog.from_dict(data)


@needs_git
def test_git_install_is_verified_against_the_pinned_commit_and_repaired_by_git(mirror, tmp_path):
    bare, commit = git_repo(tmp_path, "v9.9.9")
    cat = git_catalog(mirror, bare.as_uri(), commit, "v9.9.9")
    folder = tmp_path / "disk" / "ComfyUI"
    plan = make_plan(None, 10**12, cat, folder, platform="linux", git_found=True)
    assert plan.source.kind == "git" and plan.can_install
    assert plan.components[0].sum_source == f"verified by git against commit {commit[:7]}…"
    env, lines = FakeEnv(), []
    run_async(inst.Installer(plan, cat, env=env, disk_usage=PLENTY,
                             on_event=lambda e: lines.append(e.text) if isinstance(e, inst.LogLine) else None).install())
    manifest = inst.read_manifest(folder)
    assert manifest["source"] == "git" and manifest["commit"] == commit and manifest["tag"] == "v9.9.9"
    assert "main.py" in manifest["files"] and not any(k.startswith(".git/") for k in manifest["files"])
    assert env.calls == 1 and venv_python(folder).exists()  # PyTorch through pip as before
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == MODEL
    assert any("git fsck passed" in ln for ln in lines)
    assert inspect_folder(folder).kind == "git"
    (folder / "nodes.py").write_text("tampered")
    report = run_async(inst.repair(folder, cat))
    assert report.fixed == ("nodes.py",) and (folder / "nodes.py").read_text() == "# nodes\n" * 50


@needs_git
def test_a_tag_moved_to_another_commit_is_refused_and_nothing_installed(mirror, tmp_path):
    bare, commit = git_repo(tmp_path, "v9.9.9")
    moved = move_tag(tmp_path, bare, "v9.9.9")
    cat = git_catalog(mirror, bare.as_uri(), commit, "v9.9.9")
    folder = tmp_path / "disk" / "ComfyUI"
    env = FakeEnv()
    with pytest.raises(GitVerifyFailed) as err:
        run_async(inst.Installer(make_plan(None, 10**12, cat, folder, platform="linux"), cat, env=env,
                                 disk_usage=PLENTY).install())
    assert moved[:12] in err.value.user_message and commit[:12] in err.value.user_message
    assert not folder.exists() and env.calls == 0
    assert not (inst.staging_for(folder) / "comfyui").exists()


@needs_git
def test_git_fetch_failure_says_what_git_said(mirror, tmp_path):
    cat = git_catalog(mirror, (tmp_path / "missing.git").as_uri(), "b" * 40, "v1")
    folder = tmp_path / "disk" / "ComfyUI"
    with pytest.raises(GitFailed) as err:
        run_async(inst.Installer(make_plan(None, 10**12, cat, folder, platform="linux"), cat, env=FakeEnv(),
                                 disk_usage=PLENTY).install())
    assert "git could not fetch ComfyUI v1" in err.value.user_message and not folder.exists()


def test_every_shipped_sum_says_where_it_came_from():
    for release in SHIPPED.releases:
        for spec in [release.archive, *(s for _b, s in release.portable)]:
            if spec is not None and spec.sha256:
                assert len(spec.sha256) == 64 and spec.sha256_from, spec.name
    assert {b for b, _s in SHIPPED.latest.portable} == {"nvidia", "amd", "intel"}


def test_an_amd_or_intel_portable_build_is_not_started_with_cpu(tmp_path):
    from studio_core.comfy_server import portable_drives_other_gpu

    for bat, other in (("run_nvidia_gpu.bat", False), ("run_amd_gpu.bat", True), ("run_intel_gpu.bat", True)):
        folder = tmp_path / bat
        (folder / "python_embeded").mkdir(parents=True)
        (folder / "python_embeded/python.exe").write_text("")
        (folder / "ComfyUI").mkdir()
        (folder / "ComfyUI/main.py").write_text("")
        (folder / bat).write_text("")
        spec = inspect_folder(folder)
        assert spec.kind == "portable" and portable_drives_other_gpu(spec) is other, bat
