"""Run one service's ``check()`` without ever blocking the window or raising.

The provider module (and its SDK, which can take a second to import) is imported on a
worker thread first, so the registry's own import on the loop is then a cache hit.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import logging
from typing import Any, Mapping

from studio_core.errors import DependencyMissing, MissingCredentials, StudioError
from studio_core.models import ProviderStatus, ServiceState
from studio_core.services import service_info

log = logging.getLogger(__name__)

CHECK_TIMEOUT = 45.0
NOT_INSTALLED = "not_installed"


# One SDK import at a time: importing google-genai and openai (both pull in pydantic) in
# two threads at once was seen to hand one of them a half-initialised pydantic module.
_IMPORT_LOCK = threading.Lock()


def _preimport(module: str) -> None:
    try:
        with _IMPORT_LOCK:
            importlib.import_module(module)
    except ImportError:
        pass  # the registry turns this into DependencyMissing with the right package name


NEEDS_SETUP = "needs_setup"  # detail: the labels of the required settings still empty


def setup_gap(service_id: str, cfg: Mapping[str, Any], *, key_source: str | None,
              ambient: bool = False) -> ProviderStatus | None:
    """What is missing before ``service_id`` can be asked anything, or None.

    Pure: the caller looks up where a key would come from (``secrets.source``, blocking).
    An unset service is "needs a key"/"needs setup" like its neighbours, never a red
    "endpoint must be a web address (got '')" from a provider called with nothing.
    """
    try:
        info = service_info(service_id)
    except StudioError:
        return None
    if not info.secret_name:
        return None
    from studio_gui.services.provider_fields import form_for

    form = form_for(service_id)
    missing = tuple(f.label for f in form.fields if f.required and not str(cfg.get(f.key) or "").strip())
    key_needed = True
    if form.key.required_when is not None:
        other, value = form.key.required_when
        chosen = str(cfg.get(other) or "").strip()
        # Another sign-in was chosen (Entra ID, an AWS profile): that one needs no key here.
        key_needed = not chosen or chosen == value
    key_missing = key_needed and key_source is None and not ambient
    if key_missing and missing:
        # The card says "needs a key" like its keyless neighbours; the message names the rest.
        return ProviderStatus(ServiceState.needs_key, f"{info.name} needs an API key and its {_words(missing)}."
                                                      " Add them in Settings.")
    if key_missing:
        return ProviderStatus(ServiceState.needs_key, "Add an API key in Settings to use this service.")
    if missing:
        return ProviderStatus(ServiceState.needs_key, f"{info.name} needs its {_words(missing)}. Enter them in Settings.",
                              ((NEEDS_SETUP, missing),))
    return None


def _words(labels: tuple[str, ...]) -> str:
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def core_setup_gap(core, service_id: str) -> ProviderStatus | None:
    """:func:`setup_gap` from the core's settings and key store. Blocking: call in a thread."""
    from studio_core.services import ambient_credentials

    info = service_info(service_id)
    if not info.secret_name:
        return None
    source = getattr(core.secrets, "source", None)
    key_source = source(info.secret_name) if callable(source) else None
    return setup_gap(service_id, core.settings.current.provider(service_id), key_source=key_source,
                     ambient=service_id in ambient_credentials())


async def check_service(core, service_id: str, *, timeout: float = CHECK_TIMEOUT) -> ProviderStatus:
    redact = getattr(core.secrets, "redact", lambda s: s)
    try:
        gap = await asyncio.to_thread(core_setup_gap, core, service_id)
        if gap is not None:
            return gap
        info = service_info(service_id)
        await asyncio.to_thread(_preimport, info.module)
        provider = core.services.provider(service_id)
        async with asyncio.timeout(timeout):
            status = await provider.check()
    except DependencyMissing as exc:
        return ProviderStatus(ServiceState.error, exc.user_message, details=((NOT_INSTALLED, exc.package),))
    except ImportError as exc:
        log.warning("service %s is not part of this build: %s", service_id, exc)
        return ProviderStatus(ServiceState.error, "This service is not included in this build.",
                              details=((NOT_INSTALLED, service_id),))
    except TimeoutError:
        return ProviderStatus(ServiceState.unreachable, f"No answer within {timeout:.0f} s.")
    except StudioError as exc:
        # check() should report rather than raise; a provider that raises anyway still gets words.
        state = ServiceState.needs_key if isinstance(exc, MissingCredentials) else ServiceState.error
        return ProviderStatus(state, redact(exc.user_message))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("checking %s failed unexpectedly", service_id)
        return ProviderStatus(ServiceState.error, f"The check failed unexpectedly ({type(exc).__name__}); see the log.")
    if not isinstance(status, ProviderStatus):
        return ProviderStatus(ServiceState.error, "The service gave no status.")
    return ProviderStatus(status.state, redact(status.message), status.details)
