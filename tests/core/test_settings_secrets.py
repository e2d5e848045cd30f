from __future__ import annotations

import json
import logging
import os
import stat

from studio_core.models import GenerationRequest
from studio_core.secrets import SecretStore, redact
from studio_core.settings import Settings, SettingsStore


def test_defaults_when_missing(tmp_path):
    s = SettingsStore(tmp_path / "settings.json")
    assert s.current == Settings()
    assert s.warnings == []


def test_update_saves_atomically_and_notifies(tmp_path):
    path = tmp_path / "settings.json"
    s = SettingsStore(path)
    seen = []
    s.subscribe(seen.append)
    s.update(comfy_url="http://127.0.0.1:9000", fallback_services=("replicate", "huggingface"))
    assert seen and seen[-1].comfy_url == "http://127.0.0.1:9000"
    again = SettingsStore(path)
    assert again.current.fallback_services == ("replicate", "huggingface")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp")]


def test_corrupt_file_falls_back_and_keeps_copy(tmp_path, caplog):
    path = tmp_path / "settings.json"
    path.write_text("{ this is not json")
    with caplog.at_level(logging.WARNING):
        s = SettingsStore(path)
    assert s.current == Settings()
    assert s.warnings and "damaged" in s.warnings[0]
    assert (tmp_path / "settings.json.bad").exists()


def test_wrong_types_fall_back_per_field(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"width": "huge", "height": 640, "comfy_manage_server": "yes", "providers": {"openai": 3}}))
    s = SettingsStore(path)
    assert s.current.width == Settings().width
    assert s.current.height == 640
    assert s.current.comfy_manage_server is False
    assert s.current.providers == {}
    assert len(s.warnings) == 3


def test_request_roundtrip_dict():
    r = GenerationRequest(prompt="x", seed=None, options={"b": 1, "a": "z"})
    assert r.options == (("a", "z"), ("b", 1))
    assert GenerationRequest.from_dict(json.loads(r.to_json())) == r
    assert GenerationRequest.from_dict({"prompt": "y", "width": "bad", "seed": True}).width == 1024


def test_secret_store_keyring(tmp_path):
    s = SecretStore(tmp_path / "secrets.json")
    assert s.info().kind == "keyring"
    s.set("openai", "  sk-test-123456789  ")
    assert s.get("openai") == "sk-test-123456789"
    assert not (tmp_path / "secrets.json").exists()
    s.delete("openai")
    assert s.get("openai") is None


def test_secret_store_file_fallback_is_private(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    import keyring.core

    monkeypatch.setattr(keyring.core, "_keyring_backend", None)
    s = SecretStore(tmp_path / "secrets.json")
    assert s.info().kind == "file"
    assert "private file" in s.info().description
    s.set("replicate", "r8_abcdefghijkl")
    assert stat.S_IMODE(os.stat(tmp_path / "secrets.json").st_mode) == 0o600
    assert SecretStore(tmp_path / "secrets.json", use_keyring=False).get("replicate") == "r8_abcdefghijkl"


def test_env_vars_are_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fromenvironment")
    s = SecretStore(tmp_path / "secrets.json")
    assert s.get("huggingface") == "hf_fromenvironment"
    assert s.source("huggingface") == "env:HF_TOKEN"


def test_redaction():
    text = "POST failed: Authorization: Bearer sk-live-abcdefgh1234 and api-key: 1234567890abcdef ?key=AIzaSyABCDEFGHIJKLMNOPQRSTUV"
    out = redact(text, {"sk-live-abcdefgh1234"})
    assert "sk-live" not in out and "1234567890abcdef" not in out and "AIzaSy" not in out


def test_logs_never_carry_keys(tmp_path):
    from studio_core.logs import configure_logging

    s = SecretStore(tmp_path / "secrets.json")
    s.set("openai", "sk-verysecretvalue99")
    logfile = configure_logging(tmp_path / "logs" / "studio.log", redact=s.redact)
    logging.getLogger("studio_core.test").warning("request with key %s failed", "sk-verysecretvalue99")
    for h in logging.getLogger().handlers:
        h.flush()
    text = logfile.read_text()
    assert "request with key" in text and "sk-verysecretvalue99" not in text


def test_update_inside_a_loop_writes_off_thread_and_flushes(tmp_path):
    import asyncio
    import threading

    path = tmp_path / "settings.json"
    s = SettingsStore(path)
    writers: list[str] = []
    real = s._write_logged

    def spy(text):
        writers.append(threading.current_thread().name)
        real(text)

    s._write_logged = spy

    async def go():
        for w in (512, 640, 768):
            s.update(width=w)
        await s.flush()

    asyncio.run(go())
    assert json.loads(path.read_text())["width"] == 768
    assert writers and all(n.startswith("settings") for n in writers)
