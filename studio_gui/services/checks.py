"""Run one service's ``check()`` without ever blocking the window or raising.

The provider module (and its SDK, which can take a second to import) is imported on a
worker thread first, so the registry's own import on the loop is then a cache hit.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import logging

from studio_core.errors import DependencyMissing, StudioError
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


async def check_service(core, service_id: str, *, timeout: float = CHECK_TIMEOUT) -> ProviderStatus:
    redact = getattr(core.secrets, "redact", lambda s: s)
    try:
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
        state = ServiceState.needs_key if type(exc).__name__ == "MissingCredentials" else ServiceState.error
        return ProviderStatus(state, redact(exc.user_message))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("checking %s failed unexpectedly", service_id)
        return ProviderStatus(ServiceState.error, f"The check failed unexpectedly ({type(exc).__name__}); see the log.")
    if not isinstance(status, ProviderStatus):
        return ProviderStatus(ServiceState.error, "The service gave no status.")
    return ProviderStatus(status.state, redact(status.message), status.details)
