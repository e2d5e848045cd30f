"""Providers replaced by a settings change are closed (their HTTP clients, websockets),
but never under a generation still running on them (issue 12)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from studio_core import services
from studio_core.models import GenerationRequest
from studio_core.secrets import SecretStore
from studio_core.services import ServiceInfo, ServiceRegistry
from studio_core.settings import SettingsStore
from tests.conftest import run_async
from tests.fakes import FakeProvider

class Gated(FakeProvider):
    """Pauses after each event while ``gate`` is set and not yet open."""

    gate: asyncio.Event | None = None

    async def generate(self, request, *, job_id):
        async for ev in super().generate(request, job_id=job_id):
            yield ev
            if Gated.gate is not None:
                await Gated.gate.wait()


def make(settings, secrets) -> FakeProvider:
    """The factory the patched service entry points at (module ``tests.core.test_services_close``)."""
    return Gated("comfyui", steps=2)


@pytest.fixture
def registry(tmp_path, monkeypatch):
    Gated.gate = None
    monkeypatch.setitem(services._BY_ID, "comfyui",
                        ServiceInfo("comfyui", "ComfyUI (local)", "local", __name__, factory="make"))
    store = SettingsStore(tmp_path / "settings.json")
    reg = ServiceRegistry(store, SecretStore(tmp_path / "secrets.json", use_keyring=False))
    yield store, reg
    with contextlib.suppress(Exception):
        store.close()


def test_a_provider_replaced_by_new_settings_is_closed(registry):
    store, reg = registry

    async def go() -> None:
        old = reg.provider("comfyui")
        store.update(comfy_url="http://127.0.0.1:9911")
        for _ in range(3):
            await asyncio.sleep(0)
        assert old.closed, "the replaced provider's connections are still open"
        new = reg.provider("comfyui")
        assert new is not old and not new.closed
        await reg.aclose()
        assert new.closed

    run_async(go())


def test_a_replaced_provider_is_closed_only_after_its_running_generation_ends(registry):
    store, reg = registry

    async def go() -> None:
        Gated.gate = asyncio.Event()
        old = reg.provider("comfyui")
        events = old.generate(GenerationRequest("a slime", service="comfyui"), job_id="j1")
        try:
            await events.__anext__()
            store.update(comfy_url="http://127.0.0.1:9912")
            for _ in range(3):
                await asyncio.sleep(0)
            assert not old.closed, "closed under a running generation"
            Gated.gate.set()
            async for _ev in events:
                pass
            for _ in range(3):
                await asyncio.sleep(0)
            assert old.closed
        finally:
            await events.aclose()
            await reg.aclose()

    run_async(go())


def test_invalidate_closes_the_old_provider_too(registry):
    _store, reg = registry

    async def go() -> None:
        old = reg.provider("comfyui")
        reg.invalidate("comfyui")
        for _ in range(3):
            await asyncio.sleep(0)
        assert old.closed
        await reg.aclose()

    run_async(go())
