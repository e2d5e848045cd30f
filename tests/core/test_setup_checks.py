"""Repair's torch check, sums the user pasted, and the progress line while a download stalls."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections import namedtuple

import pytest

from studio_core.setup import entered_sums, installer as inst
from studio_core.setup.catalog import Catalog
from studio_core.setup.errors import BadChecksumText, ChecksumMismatch, EnvironmentFailed
from studio_core.setup.plan import make_plan
from studio_core.setup.progress import RateMeter, describe
from studio_core.setup.pyenv import torch_check, venv_python
from tests.conftest import run_async
from tests.setup_fakes import FAKE_TORCH_VERSION, FakeEnv, release_zip, torch_dir
from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors

Usage = namedtuple("Usage", "total used free")
PLENTY = lambda _p: Usage(10**13, 0, 10**12)  # noqa: E731
MODEL = fake_safetensors(400_000, seed=11)
POSE = fake_safetensors(20_000, seed=12)


@pytest.fixture
def mirror():
    with SetupMirror() as m:
        yield m


def installed(mirror, tmp_path):
    cat = Catalog.from_dict(catalog_dict(mirror, archive=release_zip("1"), model=MODEL, pose=POSE))
    folder = tmp_path / "ComfyUI"
    env = FakeEnv()
    run_async(inst.Installer(make_plan(None, 10**12, cat, folder), cat, env=env, disk_usage=PLENTY).install())
    return cat, folder, env


# -- repair: does torch import? -----------------------------------------------------------------

def test_repair_rebuilds_an_environment_whose_torch_does_not_import(mirror, tmp_path):
    cat, folder, env = installed(mirror, tmp_path)
    assert run_async(torch_check(venv_python(folder))) == (FAKE_TORCH_VERSION, "")
    shutil.rmtree(torch_dir(folder))  # every file the manifest lists still matches its sum
    version, why = run_async(torch_check(venv_python(folder)))
    assert version is None and "No module named 'torch'" in why
    lines = []
    report = run_async(inst.repair(folder, cat, env=env,
                                   on_event=lambda e: lines.append(e.text) if isinstance(e, inst.LogLine) else None))
    assert report.fixed == ("venv",) and report.torch == FAKE_TORCH_VERSION
    assert env.calls == 2 and torch_dir(folder).is_dir()
    assert any("PyTorch does not import" in ln for ln in lines)


def test_repair_leaves_a_working_environment_alone(mirror, tmp_path):
    cat, folder, env = installed(mirror, tmp_path)
    report = run_async(inst.repair(folder, cat, env=env))
    assert report.fixed == () and report.torch == FAKE_TORCH_VERSION and env.calls == 1


def test_repair_says_so_when_the_rebuilt_environment_still_cannot_import_torch(mirror, tmp_path):
    cat, folder, env = installed(mirror, tmp_path)

    class NoTorchEnv(FakeEnv):
        async def build(self, comfy_dir, torch, on_line):
            py = await super().build(comfy_dir, torch, on_line)
            shutil.rmtree(torch_dir(comfy_dir))
            return py

    shutil.rmtree(torch_dir(folder))
    with pytest.raises(EnvironmentFailed) as err:
        run_async(inst.repair(folder, cat, env=NoTorchEnv()))
    assert "still does not import" in err.value.user_message


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell for the stand-in interpreter")
def test_torch_check_gives_up_on_a_hanging_interpreter(tmp_path):
    slow = tmp_path / "python"
    slow.write_text("#!/bin/sh\nexec sleep 60\n")
    slow.chmod(0o755)
    version, why = run_async(torch_check(slow, timeout=0.3))
    assert version is None and "did not finish" in why
    failing = tmp_path / "python1"
    failing.write_text("#!/bin/sh\necho 'ImportError: DLL load failed' >&2\nexit 1\n")
    failing.chmod(0o755)
    version, why = run_async(torch_check(failing))
    assert version is None and "exit code 1" in why and "DLL load failed" in why


# -- a sum the user pasted --------------------------------------------------------------------------

SUM = "ab" * 32


@pytest.mark.parametrize("text", [SUM, SUM.upper(), f"  {SUM}\n", f"sha256:{SUM}", f"SHA256: {SUM}",
                                  f"{SUM}  ComfyUI-0.3.44.zip", f"{SUM} *ComfyUI-0.3.44.zip"])
def test_pasted_sums_in_the_usual_forms_are_read(text):
    assert entered_sums.parse_sha256(text, name="ComfyUI-0.3.44.zip") == SUM


@pytest.mark.parametrize("text, words", [("", "Paste"), ("abc", "3 characters"), ("g" * 64, "'g'"),
                                         (SUM + "00", "66 characters"), (f"{SUM} other.zip", "only")])
def test_text_that_is_not_a_sum_is_refused_in_plain_words(text, words):
    with pytest.raises(BadChecksumText) as err:
        entered_sums.parse_sha256(text, name="ComfyUI-0.3.44.zip")
    assert words in err.value.user_message


def unpinned_archive_catalog(mirror):
    data = catalog_dict(mirror, archive=release_zip("1"), model=MODEL, pose=POSE)
    for r in data["comfyui"]:
        r["archive"]["sha256"] = None
    return Catalog.from_dict(data)


def test_an_entered_sum_lets_the_archive_install_and_the_plan_says_where_it_came_from(mirror, tmp_path):
    import hashlib

    base = unpinned_archive_catalog(mirror)
    assert not make_plan(None, 10**12, base, tmp_path / "C").can_install
    stored = entered_sums.remember({}, base.latest.archive, f"sha256:{hashlib.sha256(release_zip('1')).hexdigest()}")
    assert stored == {base.latest.archive.url: {"sha256": hashlib.sha256(release_zip("1")).hexdigest(),
                                                "name": "ComfyUI-test2.zip"}}
    cat = base.with_user_sums(entered_sums.sums_from_settings(stored))
    plan = make_plan(None, 10**12, cat, tmp_path / "C")
    assert plan.can_install, plan.problems
    sources = {c.kind: c.sum_source for c in plan.components}
    assert sources["comfyui"] == "entered by you" and sources["model"] == "pinned in the app"
    run_async(inst.Installer(plan, cat, env=FakeEnv(), disk_usage=PLENTY).install())
    assert inst.read_manifest(tmp_path / "C")["comfyui"] == "0.0.2-test"


def test_a_wrong_entered_sum_refuses_the_archive_and_says_it_was_yours(mirror, tmp_path):
    base = unpinned_archive_catalog(mirror)
    cat = base.with_user_sums({base.latest.archive.url: "0" * 64})
    with pytest.raises(ChecksumMismatch) as err:
        run_async(inst.Installer(make_plan(None, 10**12, cat, tmp_path / "C"), cat, env=FakeEnv(),
                                 disk_usage=PLENTY).install())
    assert "you entered" in err.value.user_message and "ComfyUI-test2.zip" in err.value.user_message
    assert not (tmp_path / "C").exists()


def test_an_entered_sum_never_replaces_a_pinned_one(mirror):
    cat = Catalog.from_dict(catalog_dict(mirror, archive=release_zip("1"), model=MODEL, pose=POSE))
    model = cat.models[0].file
    filled = cat.with_user_sums({model.url: "0" * 64, cat.latest.archive.url: "1" * 64})
    assert filled.models[0].file == model and filled.latest.archive == cat.latest.archive
    assert entered_sums.sums_from_settings({"u": {"sha256": "not hex"}, "v": "x", "w": {"sha256": SUM}}) == {"w": SUM}


# -- the progress line during a stall ----------------------------------------------------------------

def test_a_stalled_download_shows_zero_speed_and_stalled_then_recovers(mirror, tmp_path):
    cat = Catalog.from_dict(catalog_dict(mirror, archive=release_zip("1"), model=MODEL, pose=POSE))
    mirror.hold_after["/models/tiny.safetensors"] = 100_000
    events: list[inst.DownloadProgress] = []

    def on_event(e):
        if isinstance(e, inst.DownloadProgress):
            events.append(e)
            if e.name == "tiny.safetensors" and e.file.stalled:
                mirror.release.set()  # the connection comes back once the line has said "stalled"

    installer = inst.Installer(make_plan(None, 10**12, cat, tmp_path / "C"), cat, env=FakeEnv(),
                               on_event=on_event, disk_usage=PLENTY, tick_s=0.05, stall_s=0.3)
    run_async(installer.install())
    model_events = [e for e in events if e.name == "tiny.safetensors"]
    stalled = [e for e in model_events if e.file.stalled]
    assert stalled, "no progress event came while no bytes arrived"
    first = stalled[0]
    assert first.file.done == 100_000 and first.file.speed == 0 and first.file.eta_s is None
    assert first.overall.stalled and first.overall.speed == 0
    assert "stalled" in describe(first.file) and "0 B/s" in describe(first.file)
    assert "left" not in describe(first.file)
    assert model_events[-1].file.done == len(MODEL) and not model_events[-1].file.stalled


def test_rate_meter_slows_then_stalls_when_asked_without_new_bytes():
    now = [0.0]
    meter = RateMeter(clock=lambda: now[0], stall_s=5.0)
    for _ in range(4):
        now[0] += 1.0
        meter.add(1_000_000)
    assert meter.transfer(4_000_000, 8_000_000).speed == pytest.approx(1_000_000)
    now[0] += 2.0  # two seconds of nothing: the speed falls instead of repeating the last value
    slower = meter.transfer(4_000_000, 8_000_000)
    assert 0 < slower.speed < 1_000_000 and not slower.stalled
    now[0] += 3.0
    t = meter.transfer(4_000_000, 8_000_000)
    assert t.stalled and t.speed == 0 and t.eta_s is None and t.idle_s == pytest.approx(5.0)
    assert describe(t) == "3.8 MB of 7.6 MB · 0 B/s · stalled, nothing received for 5 s"
    never = RateMeter(clock=lambda: now[0], stall_s=5.0)
    now[0] += 6.0
    assert never.transfer(0, 100).stalled  # a connection that never sent a byte stalls too
