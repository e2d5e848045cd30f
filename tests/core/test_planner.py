from __future__ import annotations

from studio_core.hardware.families import FLUX, SD15, SDXL
from studio_core.hardware.planner import FitLevel, JobShape, ProposalKind, assess, level_for
from studio_core.hardware.profiles import RTX_3050, profile_for_total


def test_levels():
    assert level_for(1000, 5120) is FitLevel.ok
    assert level_for(4700, 5120) is FitLevel.near
    assert level_for(5121, 5120) is FitLevel.over


def test_fitting_job_gets_no_proposals():
    a = assess(JobShape(SD15, 512, 512), RTX_3050)
    assert a.level is FitLevel.ok and a.proposals == () and a.budget_mib == 5120


def test_batch_is_first_and_respects_the_profile_limit():
    a = assess(JobShape(SD15, 768, 768, batch=4), RTX_3050)
    first = a.proposals[0]
    assert first.kind is ProposalKind.smaller_batch
    assert first.changes == {"batch": 1}  # the seed's maxBatchSize 1
    assert first.fits and "one run at a time" in first.explanation
    # On a 12 GB card the largest batch that fits is kept.
    b = assess(JobShape(SDXL, 1024, 1024, batch=8), profile_for_total(12 * 1024))
    assert b.proposals[0].kind is ProposalKind.smaller_batch and 1 < b.proposals[0].changes["batch"] <= 4


def test_tiled_vae_when_decode_is_over():
    a = assess(JobShape(SDXL, 1024, 1024, precision="fp8"), profile_for_total(5 * 1024 + 512))
    kinds = [p.kind for p in a.proposals]
    assert kinds[0] is ProposalKind.tiled_vae
    assert a.proposals[0].options == {"tiled_vae": True} and a.proposals[0].fits
    assert "VAEDecodeTiled" in a.proposals[0].title


def test_lower_resolution_then_upscale():
    # SD 1.5 at 2048² on a 4 GB card: sampling is over; a smaller size fits, upscaled back.
    a = assess(JobShape(SD15, 2048, 2048), profile_for_total(4096))
    lower = next(p for p in a.proposals if p.kind is ProposalKind.lower_resolution)
    assert lower.changes["width"] < 2048 and lower.changes["width"] % 64 == 0
    assert lower.changes["width"] == lower.changes["height"]  # aspect kept
    assert lower.options["upscale_to"] == "2048x2048"
    assert lower.options.get("tiled_vae") is True  # built on the step before
    assert lower.fits and "upscal" in lower.explanation


def test_lowvram_is_last_resort_and_never_applied():
    shape = JobShape(SDXL, 1024, 1024)
    a = assess(shape, RTX_3050)
    assert a.level is FitLevel.over
    assert a.proposals[-1].kind is ProposalKind.lowvram and a.proposals[-1].server_flag == "--lowvram"
    assert a.proposals[-1].fits and "slower" in a.proposals[-1].explanation
    assert shape == JobShape(SDXL, 1024, 1024)  # the request itself is untouched
    order = [p.kind for p in assess(JobShape(SD15, 2048, 2048, batch=4), profile_for_total(4096)).proposals]
    assert order == sorted(order, key=list(ProposalKind).index)


def test_every_proposal_explains_its_estimate():
    for p in assess(JobShape(FLUX, 1024, 1024, precision="fp8", batch=2), RTX_3050).proposals:
        assert "Estimated peak afterwards" in p.explanation and p.title


def test_proposal_options_reach_the_comfy_graph():
    """tiled_vae → VAEDecodeTiled (2024 and 0.3.x inputs), upscale_to → ImageScale back to the asked size."""
    import json
    from pathlib import Path

    from studio_core.models import GenerationRequest
    from studio_core.providers.comfy import workflow

    info = json.loads((Path(__file__).resolve().parents[1] / "data" / "comfy_object_info_0.3.64.json").read_text())
    info["VAEDecodeTiled"] = {"input": {"required": {
        "samples": ["LATENT"], "vae": ["VAE"], "tile_size": ["INT", {"default": 512, "min": 64, "max": 4096}],
        "overlap": ["INT", {"default": 64, "min": 0, "max": 4096}]}}}
    a = assess(JobShape(SD15, 2048, 2048), profile_for_total(4096))
    lower = next(p for p in a.proposals if p.kind is ProposalKind.lower_resolution)
    req = GenerationRequest(prompt="x", model="v1-5-pruned-emaonly.safetensors", width=2048, height=2048)
    req = req.replace(**lower.changes).with_options(**lower.options)
    graph = workflow.build(req, info)
    by_class = {v["class_type"]: v["inputs"] for v in graph.values()}
    assert by_class["VAEDecodeTiled"]["tile_size"] == 512 and by_class["VAEDecodeTiled"]["overlap"] == 64
    assert (by_class["ImageScale"]["width"], by_class["ImageScale"]["height"]) == (2048, 2048)
    assert by_class["EmptyLatentImage"]["width"] == lower.changes["width"]
    plain = {v["class_type"] for v in workflow.build(GenerationRequest(prompt="x"), info).values()}
    assert "VAEDecode" in plain and "ImageScale" not in plain


def test_smallest_card_for_an_estimate():
    from studio_core.hardware.profiles import profile_for_total, smallest_card_for

    assert smallest_card_for(1000).total_mib == 4096
    six = profile_for_total(6144)
    assert smallest_card_for(six.safe_mib).total_mib == 6144
    assert smallest_card_for(six.safe_mib + 1).total_mib == 8192
    assert smallest_card_for(10**6) is None
