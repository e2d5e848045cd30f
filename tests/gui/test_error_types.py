"""The GUI tells errors apart by type, never by class-name strings (issue 12)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from studio_core.errors import MissingCredentials
from studio_core.models import ServiceState
from tests.fakes import FakeProvider

ROOT = Path(__file__).resolve().parents[2]


class KeyExpired(MissingCredentials):
    """A provider's own, more specific 'no usable key'."""


class RaisingCheck(FakeProvider):
    async def check(self):
        raise KeyExpired("token expired")


def test_a_subclass_of_missing_credentials_still_means_needs_key(core, loop, monkeypatch):
    from studio_gui.services.checks import check_service

    core.secrets.set("openai", "sk-test-key-00000000")  # so the check reaches the provider
    monkeypatch.setattr(core.services, "provider", lambda sid: RaisingCheck(sid))
    status = loop.run_until_complete(check_service(core, "openai"))
    assert status.state == ServiceState.needs_key


def test_no_class_name_comparisons_in_the_gui():
    out = subprocess.run(["grep", "-rnE", r"__name__ *(==|!=|in )|class_name", str(ROOT / "studio_gui")],
                         capture_output=True, text=True)
    assert out.stdout == "", out.stdout
