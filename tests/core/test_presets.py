from __future__ import annotations

import pytest

from studio_core.hardware.families import FLUX, SD15, SD2, SDXL
from studio_core.hardware.presets import InvalidSize, parse_seed, parse_side, presets_for, quality_spec
from studio_core.hardware.profiles import RTX_3050, profile_for_total
from studio_core.models import QualityTier


@pytest.mark.parametrize("family", [SD15, SD2, SDXL, FLUX])
def test_eight_presets_per_family(family):
    presets = presets_for(family)
    assert len(presets) == 8
    assert (presets[0].width, presets[0].height) == family.native
    assert {(p.width, p.height) for p in presets[-2:]} == {(256, 256), (384, 384)}  # sprite sizes
    assert all(p.width % 8 == 0 and p.height % 8 == 0 for p in presets)
    assert len({p.label for p in presets}) == 8


@pytest.mark.parametrize("text,value", [("512", 512), (" 1000 ", 1000), ("1001", 1000), ("1020px", 1024), (768, 768),
                                        ("64", 64), ("4096", 4096)])
def test_custom_sides_round_to_8(text, value):
    assert parse_side(text) == value


@pytest.mark.parametrize("text,needle", [("0", "more than 0"), ("7", "too small"), ("100000", "too large"),
                                         ("-512", "more than 0"), ("abc", "whole number"), ("12.5", "whole number"),
                                         ("", "Enter a width"), (True, "number of pixels")])
def test_bad_sides_say_why(text, needle):
    with pytest.raises(InvalidSize) as e:
        parse_side(text)
    assert needle in e.value.user_message


def test_seed_parsing():
    assert parse_seed("") is None and parse_seed(None) is None
    assert parse_seed("42") == 42 and parse_seed(0) == 0
    for bad, needle in (("-1", "negative"), ("x1", "whole number"), (str(2**64), "too large")):
        with pytest.raises(InvalidSize) as e:
            parse_seed(bad)
        assert needle in e.value.user_message


def test_quality_tiers_match_the_seed_on_its_card():
    o, h, u = (quality_spec(t, profile=RTX_3050) for t in QualityTier)
    assert (o.steps, h.steps, u.steps) == (20, 28, 35)
    assert (o.cfg, h.cfg, u.cfg) == (6.0, 7.0, 7.5)
    assert o.time_hint == "~25 s–45 s" and h.time_hint == "~2 min–5 min" and u.time_hint == "up to 20 min"
    assert u.timeout_s == 1200


def test_quality_hints_scale_with_the_card_and_distilled_models():
    fast = quality_spec(QualityTier.high, profile=profile_for_total(24 * 1024))
    assert fast.steps == 28 and fast.time_hint != quality_spec(QualityTier.high, profile=RTX_3050).time_hint
    from studio_core.hardware.families import FLUX_SCHNELL

    s = quality_spec(QualityTier.optimized, family=FLUX_SCHNELL)
    assert s.steps == 4 and s.cfg == 1.0
