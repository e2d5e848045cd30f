"""Shared set-up for the service selector and provider page tests: fake providers per service."""

from __future__ import annotations

from studio_core.models import ProviderStatus, ServiceState
from tests.fakes import FakeProvider


class FakeServices:
    """Stands in for ``core.services.provider``: a FakeProvider per id, or an exception to raise."""

    def __init__(self, core, monkeypatch, statuses: dict[str, ProviderStatus | BaseException] | None = None,
                 *, with_keys: bool = True):
        self.core = core
        if with_keys:
            # The selector marks keyless cloud services "needs key" without asking the provider.
            for info in core.services.all():
                if info.secret_name:
                    core.secrets.set(info.secret_name, f"test-key-{info.id}-0000")
            # Azure asks nothing without its endpoint and deployment (checks.setup_gap).
            core.settings.update(providers={**core.settings.current.providers,
                                            "azure": {"endpoint": "https://example.openai.azure.com",
                                                      "deployment": "img"}})
        self.providers: dict[str, FakeProvider] = {}
        self.raises: dict[str, BaseException] = {}
        for info in core.services.all():
            self.providers[info.id] = FakeProvider(info.id)
        for sid, st in (statuses or {}).items():
            self.set(sid, st)
        monkeypatch.setattr(core.services, "provider", self.provider)

    def set(self, sid: str, status: ProviderStatus | BaseException) -> None:
        if isinstance(status, BaseException):
            self.raises[sid] = status
        else:
            self.raises.pop(sid, None)
            self.providers[sid].status = status

    def provider(self, sid: str):
        if sid in self.raises:
            raise self.raises[sid]
        return self.providers[sid]


READY = ProviderStatus(ServiceState.ready, "All good.")
NEEDS_KEY = ProviderStatus(ServiceState.needs_key, "This service needs an API key. Add one in Settings.")
UNREACHABLE = ProviderStatus(ServiceState.unreachable, "Can't reach the service.")
