"""Retired-model advice, one settings key for timeouts and retries, and a quiet httpx2 (issue 11, items 11 and 13)."""

from __future__ import annotations

import json
import logging

import pytest

from studio_core.errors import ModelNotFound
from studio_core.models import GenerationRequest
from studio_core.providers.cloud import catalog
from studio_core.providers.cloud.replicate import ReplicateProvider
from tests.cloud_servers import LoopbackServer, RecordingSleep, collect, replicate_problem
from tests.conftest import run_async


def cat(models: list[dict], default: str) -> catalog.ProviderSpec:
    return catalog.parse({"providers": {"replicate": {"default_model": default, "models": models}}}).provider("replicate")


def test_a_retired_default_points_to_a_model_that_is_alive():
    spec = cat([{"id": "old/model", "status": "retired"}, {"id": "gone/too", "status": "retired"},
                {"id": "new/model", "status": "active"}], default="old/model")
    msg = spec.retired_message("old/model", "Replicate")
    assert "new/model" in msg
    assert "default is old/model" not in msg and msg.count("old/model") == 1
    assert "gone/too" not in msg


def test_a_retired_default_whose_replacement_is_retired_too_skips_it():
    spec = cat([{"id": "a", "status": "retired", "replacement": "b"}, {"id": "b", "status": "retired"},
                {"id": "c", "status": "unknown"}], default="a")
    assert spec.alive_alternative("a") == "c"


def test_when_no_model_is_alive_the_message_says_so():
    spec = cat([{"id": "only/model", "status": "retired"}], default="only/model")
    msg = spec.retired_message("only/model", "Replicate")
    assert "No other working model is known" in msg and "default is" not in msg
    assert spec.alive_alternative("only/model") == ""


def test_the_shipped_catalog_never_suggests_the_model_that_failed():
    for pid, prov in catalog.load().providers.items():
        for m in prov.models:
            alt = prov.alive_alternative(m.id)
            assert alt.lower() != m.id.lower(), (pid, m.id)
            if alt:
                assert not prov.model(alt).retired, (pid, m.id, alt)


def test_a_retired_default_model_reported_by_the_service(monkeypatch):
    spec = cat([{"id": "black-forest-labs/flux-schnell", "status": "retired"},
                {"id": "black-forest-labs/flux-dev", "status": "active"}], default="black-forest-labs/flux-schnell")
    with LoopbackServer() as api:
        api.route("POST", r"/v1/models/black-forest-labs/flux-schnell/predictions",
                  replicate_problem(404, "The requested resource could not be found."))
        prov = ReplicateProvider(api_key="r8_TESTtoken1234567890", endpoint=api.url, timeout=5.0, spec=spec,
                                 sleep=RecordingSleep())
        with pytest.raises(ModelNotFound) as ei:
            run_async(collect(prov, GenerationRequest(prompt="a knight", service="replicate")))
    assert "flux-dev" in ei.value.user_message and "default is black-forest-labs/flux-schnell" not in ei.value.user_message


# -- settings ----------------------------------------------------------------------------------

def test_old_timeout_and_attempts_keys_are_migrated_on_load(tmp_path):
    from studio_core.settings import SettingsStore

    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"providers": {
        "replicate": {"timeout": 45, "model": "x/y"},
        "google": {"timeout_s": 90, "attempts": 4},
        "bedrock": {"timeout": 10, "timeout_s": 20, "attempts": 1, "retries": 3},
    }}), encoding="utf-8")
    store = SettingsStore(path)
    p = store.current.providers
    assert p["replicate"] == {"timeout_s": 45, "model": "x/y"}
    assert p["google"] == {"timeout_s": 90, "retries": 3}
    assert p["bedrock"] == {"timeout_s": 20, "retries": 3}, "the new keys win over leftovers"
    store.save()
    assert "attempts" not in path.read_text() and '"timeout"' not in path.read_text()


def test_every_provider_factory_reads_timeout_s_and_retries(paths):
    """One key name everywhere: each factory gets a 1 s timeout and 0 retries from the same two keys."""
    from studio_core.providers.cloud import azure_openai, bedrock, huggingface, openai_images, replicate
    from studio_core.secrets import SecretStore
    from studio_core.settings import Settings

    entry = {"timeout_s": 1, "retries": 0, "endpoint": "https://example.com", "deployment": "d"}
    settings = Settings(providers={pid: dict(entry) for pid in
                                   ("replicate", "openai", "azure", "huggingface", "bedrock", "google")})
    secrets = SecretStore(paths.secrets_file)
    made = [m.create(settings, secrets) for m in (replicate, openai_images, azure_openai, huggingface)]
    try:
        for prov in made:
            assert prov._attempts == 1, type(prov).__name__
        assert made[0]._client.timeout.connect == 1.0
        assert made[1]._timeout == 1.0 and made[2]._timeout == 1.0
        assert made[3]._client.timeout.read == 1.0
        b = bedrock.BedrockConfig.from_settings(settings.provider("bedrock"))
        assert b.timeout_s == 1.0 and b.attempts == 1
        try:
            from studio_core.providers.cloud import google
        except Exception:  # noqa: BLE001 - the Google SDK is optional
            return
        g = google.GoogleConfig.from_settings(settings.provider("google"))
        assert g.timeout_s == 1.0 and g.attempts == 1
    finally:
        async def close():
            for prov in made:
                await prov.aclose()
        run_async(close())


# -- logging -----------------------------------------------------------------------------------

def test_httpx2_request_lines_stay_out_of_the_log_file(tmp_path):
    from studio_core.logs import configure_logging

    root = logging.getLogger()
    before_handlers, before_level = list(root.handlers), root.level
    levels = {n: logging.getLogger(n).level for n in ("httpx", "httpx2", "httpcore2")}
    log_file = tmp_path / "studio.log"
    try:
        configure_logging(log_file)
        logging.getLogger("httpx2").info('HTTP Request: POST http://127.0.0.1/v1/images/generations "HTTP/1.1 200 OK"')
        logging.getLogger("httpx2").warning("httpx2 warning still shown")
        logging.getLogger("studio_core.test").info("studio line")
        for h in root.handlers:
            h.flush()
        text = log_file.read_text(encoding="utf-8")
    finally:
        for h in list(root.handlers):
            if getattr(h, "_studio", False):
                root.removeHandler(h)
                h.close()
        for h in before_handlers:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(before_level)
        for n, lvl in levels.items():
            logging.getLogger(n).setLevel(lvl)
    assert "HTTP Request" not in text
    assert "httpx2 warning still shown" in text and "studio line" in text


def test_the_installed_openai_logs_requests_through_httpx2():
    """The logger quieted above is the one the installed openai SDK really sends through."""
    import inspect

    import openai._base_client as base

    assert "import httpx2" in inspect.getsource(base)
    import httpx2._client as client

    assert client.logger.name == "httpx2"
