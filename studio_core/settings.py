"""User settings: a versioned JSON file, validated field by field, written atomically.

Secrets never live here (see :mod:`studio_core.secrets`). GUI-only state such as window
geometry lives in studio_gui. Bump ``SCHEMA_VERSION`` when a field changes meaning; a
new field with a default needs no bump (old files simply lack it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from studio_core.storage.atomic import atomic_write_text

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # 2: comfy_url is only what the user typed ("" = look on this computer)
DEFAULT_COMFY_URL = "http://127.0.0.1:8188"
# Fields that describe this run, not the user's choices: never written, never read from disk.
RUNTIME = {"runtime": True}


@dataclass(frozen=True)
class Settings:
    schema_version: int = SCHEMA_VERSION
    first_run_done: bool = False
    selected_service: str = "comfyui"
    fallback_services: tuple[str, ...] = ()
    # ComfyUI. comfy_url is the address the user typed; "" means "not set", and the app then
    # looks on this computer (8188, then ComfyUI Desktop's 8000). The pool of servers that
    # follows turns this one field into a list, with the managed server as its own entry.
    comfy_url: str = ""
    comfy_model: str = "sd_xl_base_1.0.safetensors"
    comfy_workflow_file: str = ""
    comfy_server_folder: str = ""
    comfy_start_command: str = ""
    comfy_manage_server: bool = False
    # The family the user named for a model nothing else could place, per server address:
    # {"http://127.0.0.1:8188": {"odd_name.safetensors": "sdxl"}}. Asked once, then kept.
    model_families: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Per LoRA file name: {"pixel-art-xl.safetensors": {"triggers": "pixel art", "strength": 0.8}}:
    # the words the picker adds to the prompt and the strength it starts at.
    lora_notes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Local setup: SHA-256 sums the user pasted for files the app ships without one, by URL:
    # {"https://…/v0.3.44.zip": {"sha256": "…", "name": "ComfyUI-0.3.44.zip"}} (studio_core.setup.entered_sums).
    setup_entered_sums: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Batch runs: the folder of __name__ word lists ("" = none).
    batch_wordlists_folder: str = ""
    # The server pool (studio_core.pool.server_list): ServerSpec.to_dict() entries, secrets in
    # the keyring. "my-pc" mirrors comfy_url; the managed server is added at run time.
    comfy_servers: tuple[dict[str, Any], ...] = ()
    pool_allow_paid: bool = False
    # Generation defaults
    width: int = 1024
    height: int = 1024
    quality: str = "optimized"
    batch: int = 1
    seed: int = -1  # -1: random each time
    style_preset: str = ""
    transparent_background: bool = False
    # Per cloud provider: {"openai": {"model": ..., "endpoint": ...}}; never keys.
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Gallery and storage care
    cleanup_days: int = 90
    storage_budget_mb: int = 0
    low_disk_warning_mb: int = 500
    # Runtime only: the server the app started (its port is picked fresh each start) and the
    # one found on this computer when no address is set. Neither ever overwrites comfy_url.
    comfy_managed_url: str = field(default="", metadata=RUNTIME)
    comfy_found_url: str = field(default="", metadata=RUNTIME)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @property
    def comfy_active_url(self) -> str:
        """The ComfyUI address to use now: the managed server while it runs, else the user's, else the found one."""
        return self.comfy_managed_url or self.comfy_url or self.comfy_found_url or DEFAULT_COMFY_URL

    def persisted(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.metadata.get("runtime")}

    def provider(self, provider_id: str) -> dict[str, Any]:
        return dict(self.providers.get(provider_id, {}))


def _coerce(name: str, value: Any, default: Any) -> tuple[bool, Any]:
    if isinstance(default, bool):
        return isinstance(value, bool), value
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool), value
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if isinstance(default, str):
        return isinstance(value, str), value
    if name == "comfy_servers":
        ok = isinstance(value, list) and all(isinstance(v, dict) for v in value)
        return ok, tuple(value) if ok else value
    if isinstance(default, tuple):
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return ok, tuple(value) if ok else value
    if isinstance(default, dict):
        ok = isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, dict) for k, v in value.items())
        return ok, value
    return False, value


def _v1_comfy_url(url: str, *, managed: bool) -> str:
    """What a schema-1 file's comfy_url meant as the user's address ("" when it was not theirs).

    Schema 1 wrote its default (8188) into every file, and saved the managed server's random
    port over the address after each start. Random ports come from the OS's ephemeral range
    (32768 and up on Linux, 49152 and up on Windows and macOS), which nobody types for ComfyUI.
    """
    text = url.strip().rstrip("/")
    if text in ("", DEFAULT_COMFY_URL, "http://localhost:8188"):
        return ""
    try:
        parts = urlsplit(text if "://" in text else "http://" + text)
        port = parts.port
    except ValueError:
        return url
    if managed and parts.hostname in ("127.0.0.1", "localhost") and port is not None and port >= 32768:
        return ""
    return url


def _defaults() -> Settings:
    return Settings()


class SettingsStore:
    """Loads, validates, saves and announces settings. Not thread-safe: use from the loop."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.warnings: list[str] = []
        self.existed = False  # whether a settings file was there at start (first run if not)
        self._settings = self._load()
        self._subscribers: list[Callable[[Settings], None]] = []
        self._writer: concurrent.futures.ThreadPoolExecutor | None = None
        # Called from the writer thread with the user message when a write fails (the core
        # publishes it as SettingsWriteFailed, so the user hears of it).
        self.on_write_failed: Callable[[str], None] | None = None

    @property
    def current(self) -> Settings:
        return self._settings

    def subscribe(self, callback: Callable[[Settings], None]) -> Callable[[], None]:
        self._subscribers.append(callback)
        return lambda: self._subscribers.remove(callback)

    def update(self, **changes: Any) -> Settings:
        new = self._settings.replace(**changes)
        if new != self._settings:
            old, self._settings = self._settings, new
            if new.persisted() != old.persisted():
                self.save()
            for cb in list(self._subscribers):
                cb(new)
        return new

    def update_provider(self, provider_id: str, **values: Any) -> Settings:
        providers = {k: dict(v) for k, v in self._settings.providers.items()}
        providers.setdefault(provider_id, {}).update(values)
        return self.update(providers=providers)

    def save(self) -> None:
        """Write the current settings; off the loop's thread when a loop is running.

        Once a background writer exists every write goes through it, so writes land in
        the order they were made; :meth:`flush` waits for all of them.
        """
        text = json.dumps(self._settings.persisted(), indent=2, sort_keys=True, ensure_ascii=False)
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None and self._writer is None:
            atomic_write_text(self.path, text)
            return
        if self._writer is None:
            self._writer = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="settings")
        self._writer.submit(self._write_logged, text)

    def _write_logged(self, text: str) -> None:
        try:
            atomic_write_text(self.path, text)
        except Exception as exc:  # reported in the log; the in-memory settings stay in force
            message = getattr(exc, "user_message", "") or str(exc)
            log.error("could not save settings: %s", message)
            if self.on_write_failed is not None:
                self.on_write_failed(f"Settings could not be saved: {message}")

    async def flush(self) -> None:
        """Wait until every write made so far is on disk."""
        writer = self._writer
        if writer is not None:
            # The worker runs jobs in order: once this no-op ran, every earlier write has.
            await asyncio.get_running_loop().run_in_executor(writer, lambda: None)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.shutdown(wait=True)
            self._writer = None

    def _warn(self, text: str) -> None:
        log.warning("settings: %s", text)
        self.warnings.append(text)

    def _load(self) -> Settings:
        defaults = _defaults()
        try:
            raw = self.path.read_text(encoding="utf-8")
            self.existed = True
        except FileNotFoundError:
            return defaults
        except OSError as exc:
            self._warn(f"could not read {self.path}: {exc}; using defaults")
            return defaults
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
        except ValueError as exc:
            self._warn(f"{self.path.name} is damaged ({exc}); using defaults and keeping a copy as .bad")
            try:
                self.path.replace(self.path.with_suffix(".json.bad"))
            except OSError:
                pass
            return defaults
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(Settings):
            if f.name not in data or f.metadata.get("runtime"):
                continue
            default = getattr(defaults, f.name)
            ok, value = _coerce(f.name, data[f.name], default)
            if ok:
                kwargs[f.name] = value
            else:
                self._warn(f"setting {f.name!r} has a value of the wrong type ({data[f.name]!r}); using {default!r}")
        version = kwargs.get("schema_version", SCHEMA_VERSION)
        if version > SCHEMA_VERSION:
            self._warn(f"settings were written by a newer version (schema {version}); unknown values are ignored")
        if version < 2 and "comfy_url" in kwargs:
            kwargs["comfy_url"] = _v1_comfy_url(kwargs["comfy_url"], managed=bool(
                str(kwargs.get("comfy_server_folder", "")).strip() or str(kwargs.get("comfy_start_command", "")).strip()))
        if "providers" in kwargs:
            kwargs["providers"] = _migrate_provider_keys(kwargs["providers"])
        if "comfy_servers" not in kwargs and str(kwargs.get("comfy_url", "")).strip():
            # Before the pool: the one typed address becomes the list's first entry.
            from studio_core.pool.server_list import migrated_entries

            kwargs["comfy_servers"] = migrated_entries(kwargs["comfy_url"])
        kwargs["schema_version"] = SCHEMA_VERSION
        return Settings(**kwargs)


# Older builds stored a cloud provider's timeout as "timeout" (some as "timeout_s") and
# its tries in all as "attempts"; every provider now reads "timeout_s" and "retries".
PROVIDER_TIMEOUT_KEY = "timeout_s"
PROVIDER_RETRIES_KEY = "retries"


def _migrate_provider_keys(providers: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for pid, entry in providers.items():
        entry = dict(entry)
        old = entry.pop("timeout", None)
        if old is not None and PROVIDER_TIMEOUT_KEY not in entry:
            entry[PROVIDER_TIMEOUT_KEY] = old
        attempts = entry.pop("attempts", None)
        if PROVIDER_RETRIES_KEY not in entry and isinstance(attempts, int) and not isinstance(attempts, bool):
            entry[PROVIDER_RETRIES_KEY] = max(attempts - 1, 0)
        out[pid] = entry
    return out
