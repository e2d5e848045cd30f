"""The model catalog data file and the cost estimates built from it."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from studio_core import costs
from studio_core.providers.cloud import catalog

CAT = catalog.load()  # prices come in as data

SIX = ("huggingface", "replicate", "openai", "azure", "bedrock", "google")


def test_data_file_covers_all_six_providers_with_live_defaults():
    cat = catalog.load()
    assert cat.as_of
    for pid in SIX:
        prov = cat.provider(pid)
        assert prov.models, pid
        default = prov.model(prov.default_model)
        assert default.known and not default.retired, pid


def test_every_price_has_a_date_and_a_source():
    for pid in SIX:
        for m in catalog.provider(pid).models:
            if m.get("price_per_image") is not None:
                assert m.price.get("source"), (pid, m.id)
                assert m.price.get("as_of") or m.price.get("estimate"), (pid, m.id)


@pytest.mark.parametrize("pid,model", [("openai", "gpt-image-1"), ("openai", "dall-e-3"), ("bedrock", "amazon.nova-canvas-v1:0"),
                                       ("google", "imagen-4.0-generate-001"), ("google", "gemini-2.5-flash-image")])
def test_retired_models_are_flagged_with_a_replacement(pid, model):
    spec = catalog.provider(pid).model(model)
    assert spec.retired and spec.get("retired_on") and spec.replacement
    assert spec.replacement in catalog.provider(pid).get("default_model") or not catalog.provider(pid).model(spec.replacement).retired


def test_retired_message_names_date_and_default():
    msg = catalog.provider("openai").retired_message("gpt-image-1", "OpenAI")
    assert "2026-10-23" in msg and "gpt-image-1.5" in msg
    msg = catalog.provider("replicate").retired_message("someone/gone", "Replicate")
    assert "someone/gone" in msg and "black-forest-labs/flux-schnell" in msg


def test_unknown_model_borrows_default_size_rules_and_has_no_price():
    spec = catalog.provider("openai").model("gpt-image-9-future")
    assert not spec.known and spec.fit(1920, 1080)[:2] == (1536, 1024)
    assert costs.price_per_image("openai", "gpt-image-9-future", cat=CAT).per_image is None


def test_fit_sizes_per_kind():
    assert catalog.provider("replicate").model("").fit(2000, 1000) == (1344, 768, "16:9")
    assert catalog.provider("openai").model("gpt-image-1.5").fit(1024, 1024) == (1024, 1024, "")
    w, h, _ = catalog.provider("openai").model("gpt-image-2").fit(5000, 1000)
    assert w % 16 == 0 and h % 16 == 0 and w / h <= 3.0 and w <= 3840
    assert catalog.provider("huggingface").model("").fit(100, 100)[:2] == (256, 256)


def test_prices_by_quality_and_shape():
    assert costs.price_per_image("openai", "gpt-image-1.5", quality="medium", cat=CAT).per_image == 0.034
    assert costs.price_per_image("openai", "gpt-image-1.5", width=1536, height=1024, quality="high", cat=CAT).per_image == 0.2
    est = costs.price_per_image("replicate", "black-forest-labs/flux-schnell", cat=CAT)
    assert est.per_image == 0.003 and est.as_of == "2026-10-07" and "replicate.com" in est.source
    assert est.total(4) == 0.012


def test_token_priced_model_uses_reported_usage():
    usage = {"output_tokens": 2000, "input_tokens": 0}
    est = costs.price_per_image("openai", "gpt-image-2.6-sunburst", usage=usage, images_in_call=2, cat=CAT)
    assert est.per_image == pytest.approx(0.03)


def test_image_info_pairs():
    info = dict(costs.image_info("replicate", "black-forest-labs/flux-schnell", width=1024, height=1024, cat=CAT))
    assert info["provider"] == "replicate" and info["model"] == "black-forest-labs/flux-schnell"
    assert info["cost_usd"] == 0.003 and info["price_as_of"] == "2026-10-07"
    unknown = dict(costs.image_info("bedrock", "amazon.titan-image-generator-v2:0", width=1024, height=1024, cat=CAT))
    assert "cost_usd" not in unknown and unknown["provider"] == "bedrock"


def test_spend_per_provider_per_day_and_month():
    now = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    entries = [
        ("2026-11-26T10:00:00+00:00", {"service": "replicate", "cost_usd": 0.003}),
        ("2026-11-26T11:00:00+00:00", {"service": "replicate", "cost_usd": 0.003}),
        ("2026-11-26T11:30:00+00:00", {"provider": "openai", "cost_usd": 0.034}),
        ("2026-11-02T09:00:00+00:00", {"service": "openai", "cost_usd": 0.2}),
        ("2026-10-31T09:00:00+00:00", {"service": "openai", "cost_usd": 1.0}),
        ("2026-11-26T11:40:00+00:00", {"service": "bedrock"}),
        ("2026-11-26T11:50:00+00:00", {"service": "comfyui", "cost_usd": 0}),
        ("not a date", {"service": "openai", "cost_usd": 5}),
    ]
    s = costs.summarize_spend(entries, now=now)
    assert s.today == {"openai": 0.034, "replicate": 0.006}
    assert s.month == {"openai": 0.234, "replicate": 0.006}
    assert s.month_total == pytest.approx(0.24) and s.today_total == pytest.approx(0.04)
    assert s.by_month["2026-10"] == {"openai": 1.0}
    assert s.unpriced == {"bedrock": 1}


def test_format_usd():
    assert costs.format_usd(None) == "price unknown"
    assert costs.format_usd(0.003) == "$0.0030" and costs.format_usd(1.5) == "$1.50"


def test_damaged_catalog_file_gives_an_empty_catalog(tmp_path):
    bad = tmp_path / "models.json"
    bad.write_text("{ nope")
    cat = catalog.load(bad)
    assert cat.provider("openai").models == () and cat.provider("openai").model("x").id == "x"
