"""Keys are read from the keyring once per session, off the loop's thread (issue 12)."""

from __future__ import annotations

import threading

from studio_core.app_core import StudioCore
from studio_core.secrets import SecretStore
from tests.conftest import run_async
from tests.memory_keyring import MemoryKeyring


class CountingKeyring(MemoryKeyring):
    reads: list[tuple[str, str]] = []  # (key name, thread name)

    def get_password(self, service, username):
        self.reads.append((username, threading.current_thread().name))
        return super().get_password(service, username)


def use_counting_keyring(monkeypatch) -> None:
    import keyring

    CountingKeyring.reads = []
    monkeypatch.setattr(keyring, "get_keyring", lambda: CountingKeyring())
    monkeypatch.setattr(keyring, "get_password", lambda s, u: CountingKeyring().get_password(s, u))


def test_preload_reads_on_a_worker_and_later_gets_never_touch_the_keyring(tmp_path, monkeypatch):
    use_counting_keyring(monkeypatch)
    MemoryKeyring.store[("CloudAIArtStudio", "openai")] = "sk-stored-key-123456"
    store = SecretStore(tmp_path / "secrets.json")

    async def go() -> str | None:
        await store.preload(["openai", "replicate"])
        CountingKeyring.reads.clear()
        return store.get("openai")

    assert run_async(go()) == "sk-stored-key-123456"
    assert CountingKeyring.reads == []
    assert store.get("replicate") is None and CountingKeyring.reads == []


def test_the_preload_runs_off_the_loop_thread(tmp_path, monkeypatch):
    use_counting_keyring(monkeypatch)
    store = SecretStore(tmp_path / "secrets.json")
    loop_thread: list[str] = []

    async def go() -> None:
        loop_thread.append(threading.current_thread().name)
        await store.preload(["openai", "google"])

    run_async(go())
    names = {n for n, _t in CountingKeyring.reads}
    assert {"openai", "google"} <= names
    assert all(t != loop_thread[0] for n, t in CountingKeyring.reads if n in ("openai", "google"))


def test_set_and_delete_keep_the_cache_true(tmp_path, monkeypatch):
    use_counting_keyring(monkeypatch)
    store = SecretStore(tmp_path / "secrets.json")
    run_async(store.preload(["openai"]))
    store.set("openai", "sk-new-key-abcdefgh")
    assert store.get("openai", env=False) == "sk-new-key-abcdefgh"
    store.delete("openai")
    assert store.get("openai", env=False) is None
    assert MemoryKeyring.store.get(("CloudAIArtStudio", "openai")) is None


def test_the_file_fallback_is_cached_too(tmp_path):
    store = SecretStore(tmp_path / "secrets.json", use_keyring=False)
    store.set("replicate", "r8_abcdefghijkl")
    (tmp_path / "secrets.json").write_text("{}")  # a later read of the file would find nothing
    assert store.get("replicate") == "r8_abcdefghijkl"


def test_opening_the_core_preloads_every_services_key(paths, monkeypatch):
    use_counting_keyring(monkeypatch)

    async def go() -> None:
        core = await StudioCore.open(paths, open_index=False)
        try:
            CountingKeyring.reads.clear()
            for sid in ("huggingface", "replicate", "openai", "azure", "google", "bedrock"):
                core.services._fingerprint(sid, core.settings.current)
            assert CountingKeyring.reads == []
        finally:
            await core.aclose()

    run_async(go())
