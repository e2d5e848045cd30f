"""API keys: the OS keyring first, a 0600 file where no keyring exists, env vars read too.

Keys never enter settings, logs or error text. :func:`redact` scrubs known keys from any
text that is about to be logged or shown (crash reports, "copy details").

A keyring read can block for seconds (Secret Service over D-Bus, a locked Windows vault), so
each stored key is read once per session and cached; :meth:`SecretStore.preload` reads them
all on a worker thread at start, and the GUI thread only ever reads the cache.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

from studio_core.storage.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

SERVICE = "CloudAIArtStudio"

# The variables each provider's own tools already read; a user who has them set needs no setup.
ENV_VARS: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",),
    "azure": ("AZURE_OPENAI_API_KEY",),
    "huggingface": ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HUGGINGFACE_API_KEY"),
    "replicate": ("REPLICATE_API_TOKEN",),
    "google": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "bedrock": ("AWS_BEARER_TOKEN_BEDROCK",),
}


@dataclass(frozen=True, slots=True)
class StoreInfo:
    kind: str  # "keyring" | "file"
    description: str  # shown in the UI


class SecretStore:
    """Get and set API keys by provider id.

    Thread-safe. The keyring backend is probed lazily on first use because some backends
    (Secret Service over D-Bus) are slow to start.
    """

    def __init__(self, fallback_file: Path, *, use_keyring: bool = True):
        self._file = Path(fallback_file)
        self._use_keyring = use_keyring
        self._lock = threading.Lock()
        self._keyring_ok: bool | None = None if use_keyring else False
        self._known: set[str] = set()
        # Stored values by name (None: nothing stored); filled on first read, kept in step by set/delete.
        self._cache: dict[str, str | None] = {}

    # -- which store -------------------------------------------------------------
    def _keyring_usable(self) -> bool:
        if self._keyring_ok is None:
            try:
                import keyring
                from keyring.errors import KeyringError

                try:
                    keyring.get_password(SERVICE, "__probe__")
                    self._keyring_ok = True
                except KeyringError as exc:
                    log.info("no usable keyring (%s); API keys go to a private file", exc.__class__.__name__)
                    self._keyring_ok = False
            except Exception as exc:  # a broken backend must not stop the app
                log.info("keyring unavailable: %s", exc.__class__.__name__)
                self._keyring_ok = False
        return bool(self._keyring_ok)

    def info(self) -> StoreInfo:
        with self._lock:
            if self._keyring_usable():
                import keyring

                name = type(keyring.get_keyring()).__name__
                return StoreInfo("keyring", f"Keys are stored in your system's password manager ({name}).")
            return StoreInfo(
                "file",
                f"No system password manager was found, so keys are stored in a private file readable only by you: {self._file}",
            )

    # -- file fallback -----------------------------------------------------------
    def _read_file(self) -> dict[str, str]:
        try:
            data = json.loads(self._file.read_text(encoding="utf-8"))
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("secrets file unreadable (%s); treating as empty", exc.__class__.__name__)
            return {}

    def _write_file(self, data: dict[str, str]) -> None:
        self._file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._file, json.dumps(data, indent=1).encode())
        os.chmod(self._file, stat.S_IRUSR | stat.S_IWUSR)

    # -- public ------------------------------------------------------------------
    def _read_stored(self, name: str) -> str | None:
        """Blocking; call with the lock held."""
        if self._keyring_usable():
            import keyring
            from keyring.errors import KeyringError

            try:
                return keyring.get_password(SERVICE, name)
            except KeyringError:
                return None
        return self._read_file().get(name)

    def get(self, name: str, *, env: bool = True) -> str | None:
        """The stored secret for ``name``, else its environment variable, else None.

        Reads the store only the first time a name is asked for (see :meth:`preload`)."""
        with self._lock:
            if name in self._cache:
                value = self._cache[name]
            else:
                value = self._cache[name] = self._read_stored(name) or None
        if not value and env:
            value = self.from_env(name)
        if value:
            self._known.add(value)
        return value or None

    def is_cached(self, name: str) -> bool:
        return name in self._cache

    async def preload(self, names: list[str] | tuple[str, ...]) -> None:
        """Read ``names`` on a worker thread, so later :meth:`get` calls on the loop never
        wait for the keyring (``ServiceRegistry.preload_secrets`` passes every service's)."""

        def read_all() -> None:
            for n in names:
                self.get(n, env=False)

        await asyncio.to_thread(read_all)

    def source(self, name: str) -> str | None:
        """'stored', 'env:VAR' or None: tells the UI where a key would come from."""
        if self.get(name, env=False):
            return "stored"
        for var in ENV_VARS.get(name, ()):
            if os.environ.get(var, "").strip():
                return f"env:{var}"
        return None

    @staticmethod
    def from_env(name: str) -> str | None:
        for var in ENV_VARS.get(name, ()):
            value = os.environ.get(var, "").strip()
            if value:
                return value
        return None

    def set(self, name: str, value: str) -> None:
        value = value.strip()
        with self._lock:
            if self._keyring_usable():
                import keyring

                keyring.set_password(SERVICE, name, value)
            else:
                data = self._read_file()
                data[name] = value
                self._write_file(data)
            self._cache[name] = value or None
        self._known.add(value)

    def delete(self, name: str) -> None:
        with self._lock:
            if self._keyring_usable():
                import keyring
                from keyring.errors import PasswordDeleteError

                try:
                    keyring.delete_password(SERVICE, name)
                except PasswordDeleteError:
                    pass
            else:
                data = self._read_file()
                if data.pop(name, None) is not None:
                    self._write_file(data)
            self._cache[name] = None

    def redact(self, text: str) -> str:
        return redact(text, self._known | {v for v in (self.from_env(n) for n in ENV_VARS) if v})


def redact(text: str, secrets: set[str] | frozenset[str] | tuple[str, ...] = ()) -> str:
    for s in sorted(secrets, key=len, reverse=True):
        if s and len(s) >= 4:
            text = text.replace(s, "•••")
    return _redact_patterns(text)


def _redact_patterns(text: str) -> str:
    import re

    # Header-shaped and well-known key shapes, for text we did not see the key for.
    text = re.sub(r"(?i)(authorization|api-key|x-goog-api-key|x-api-key)(['\"]?\s*[:=]\s*['\"]?)(bearer\s+)?[^\s'\",}]+",
                  r"\1\2\3•••", text)
    text = re.sub(r"\b(sk-[A-Za-z0-9_\-]{8,}|hf_[A-Za-z0-9]{8,}|r8_[A-Za-z0-9]{8,}|AIza[0-9A-Za-z_\-]{20,})", "•••", text)
    text = re.sub(r"([?&](key|api_key|token|sig)=)[^&\s]+", r"\1•••", text)
    return text
