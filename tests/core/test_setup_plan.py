"""The local-setup plan: a pure function of the card, the free disk and the catalog."""

from __future__ import annotations

import pytest

from studio_core.setup import catalog as catalog_mod
from studio_core.setup.gpu_facts import GpuFacts, cuda_from_nvml
from studio_core.setup.plan import GIB, make_plan as _make_plan
from studio_core.setup.progress import RateMeter, describe

CAT = catalog_mod.load()


def make_plan(*args, **kw):
    """A plan for a Linux computer with git (the Windows portable and no-git plans: test_setup_sources.py)."""
    return _make_plan(*args, **{"platform": "linux", "git_found": True, **kw})


def card(gb: float, cuda=(12, 8), name="NVIDIA GeForce RTX") -> GpuFacts:
    return GpuFacts(f"{name} {gb:g} GB", int(gb * 1024), "570.10", cuda)


@pytest.mark.parametrize("gb, family, torch_id, lowvram", [
    (4, "sd15", "cu128", True),
    (6, "sd15", "cu128", True),
    (8, "sdxl", "cu128", False),
    (12, "flux", "cu128", False),
    (24, "flux", "cu128", False),
])
def test_model_and_torch_follow_the_card(gb, family, torch_id, lowvram):
    plan = make_plan(card(gb), 500 * GIB, CAT, "/x/ComfyUI")
    assert plan.model.family == family
    assert plan.torch.id == torch_id
    assert plan.lowvram is lowvram
    assert f"{gb:g} GB VRAM" in plan.device and "CUDA 12.8" in plan.device
    kinds = [c.kind for c in plan.components]
    assert kinds[:3] == ["comfyui", "python", "model"]
    for c in plan.components:  # size, licence and source shown for every piece
        assert c.size_bytes > 0 and c.licence and c.source.startswith("https://")


def test_an_8gb_card_reported_a_little_short_still_gets_sdxl():
    assert make_plan(card(7.8), 500 * GIB, CAT, "/x").model.family == "sdxl"


def test_sdxl_and_sd15_bring_their_pose_controlnet_for_the_frames_panel():
    for gb in (6, 8):
        plan = make_plan(card(gb), 500 * GIB, CAT, "/x")
        assert [c.kind for c in plan.components].count("pose") == 1
        assert plan.downloads[-1].dest.startswith("models/controlnet/")


def test_no_gpu_is_cpu_only_and_says_how_slow():
    plan = make_plan(None, 500 * GIB, CAT, "/x")
    assert plan.cpu_only and plan.torch.id == "cpu" and plan.model.family == "sd15"
    assert "processor" in plan.device
    assert any("minutes" in n for n in plan.notes)


def test_a_card_below_4gb_uses_the_processor_and_says_why():
    plan = make_plan(card(0), 500 * GIB, CAT, "/x")
    assert plan.cpu_only and plan.model.family == "sd15"
    assert any("less than" in n for n in plan.notes)


def test_old_driver_falls_back_to_cpu_and_asks_for_a_driver_update():
    plan = make_plan(card(8, cuda=(11, 4)), 500 * GIB, CAT, "/x")
    assert plan.cpu_only
    assert any("Update the NVIDIA driver" in n for n in plan.notes)


def test_driver_cuda_picks_the_newest_build_it_runs():
    assert make_plan(card(8, cuda=(12, 6)), 500 * GIB, CAT, "/x").torch.id == "cu126"
    assert make_plan(card(8, cuda=(12, 4)), 500 * GIB, CAT, "/x").torch.id == "cu118"
    unknown = make_plan(card(8, cuda=None), 500 * GIB, CAT, "/x")
    assert unknown.torch.id == "cu118" and any("did not say" in n for n in unknown.notes)


def test_disk_needed_against_free():
    plan = make_plan(card(8), 500 * GIB, CAT, "/x")
    assert plan.disk_needed > sum(f.size_bytes for f in plan.downloads)
    short = make_plan(card(8), plan.disk_needed - 1, CAT, "/x")
    assert any("Not enough free space" in p for p in short.problems)
    assert not any("Not enough free space" in p for p in plan.problems)


def test_unpinned_items_block_the_install_and_are_named():
    # GitHub's source zips have no published sum; without git the plan falls back to one and refuses it.
    assert CAT.latest.archive.sha256 is None
    plan = make_plan(card(8), 500 * GIB, CAT, "/x", git_found=False)
    assert not plan.can_install
    assert any(CAT.latest.archive.name in p and "checksum" in p for p in plan.problems)


def test_shipped_catalog_never_has_a_made_up_sum():
    for m in CAT.models:
        for f in (m.file, *m.pose):
            assert f.sha256 is None or (len(f.sha256) == 64 and f.sha256_from), f.name


def test_nvml_cuda_numbers():
    assert cuda_from_nvml(12040) == (12, 4)
    assert cuda_from_nvml(11080) == (11, 8)


def test_update_offer_is_the_next_pinned_release():
    first, second = CAT.releases[0], CAT.releases[1]
    assert CAT.next_release(first.version) == second
    assert CAT.next_release(CAT.latest.version) is None


def test_rate_meter_speed_and_time_left():
    now = [0.0]
    meter = RateMeter(clock=lambda: now[0])
    for _ in range(4):
        now[0] += 1.0
        meter.add(1_000_000)
    t = meter.transfer(4_000_000, 10_000_000)
    assert t.speed == pytest.approx(1_000_000)
    assert t.eta_s == pytest.approx(6.0)
    assert describe(t) == "3.8 MB of 9.5 MB · 976.6 KB/s · 6 s left"
