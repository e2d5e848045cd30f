"""Shared test setup. Stays Qt-free: the core tests also run where PySide6 is not installed."""

from __future__ import annotations

import os

# Before anything can import Qt: there is no display in CI.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["PYTHON_KEYRING_BACKEND"] = "tests.memory_keyring.MemoryKeyring"

import asyncio  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own user dirs and an empty in-memory keyring."""
    home = tmp_path / "studio-home"
    monkeypatch.setenv("STUDIO_HOME", str(home))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(tmp_path / "xdg" / var.lower()))
    for var in ("OPENAI_API_KEY", "AZURE_OPENAI_API_KEY", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_KEY",
                "REPLICATE_API_TOKEN", "GEMINI_API_KEY", "GOOGLE_API_KEY", "AWS_BEARER_TOKEN_BEDROCK",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "GOOGLE_APPLICATION_CREDENTIALS", "COMFYUI_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    from tests.memory_keyring import MemoryKeyring

    MemoryKeyring.store.clear()
    return home


@pytest.fixture
def paths(isolated_home: Path):
    from studio_core.paths import AppPaths

    p = AppPaths.portable(isolated_home)
    p.ensure()
    return p


def run_async(coro, timeout: float = 60):
    """Run a coroutine to completion on a fresh loop (core tests; no Qt)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))
