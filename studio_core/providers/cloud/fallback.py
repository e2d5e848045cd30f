"""Run a request through the user's ordered fallback services when the chosen one is unavailable.

"Unavailable" means the service could not be used at all: unreachable, server errors or
rate limits that outlasted the provider's own retries, timeouts, no key, used-up credit,
or its SDK missing from this build. A refused prompt, a rejected key or a bad setting is
the user's to fix, so those end the job instead of silently switching services. Once a
service has produced an image, the job stays with it.

Every image says which service made it (``("service", id)`` in ``JobImage.info``), and a
switch is announced with a ``JobNotice`` before and after.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any, AsyncIterator, Callable, Iterable

from studio_core.errors import (
    DependencyMissing,
    GenerationFailed,
    MissingCredentials,
    ProviderUnavailable,
    QuotaExceeded,
    RateLimited,
    RequestTimedOut,
    ServerError,
    StudioError,
)
from studio_core.models import GenerationRequest, JobEvent, JobImage, JobNotice

log = logging.getLogger(__name__)

FALLBACK_ON: tuple[type[StudioError], ...] = (
    ProviderUnavailable, ServerError, RequestTimedOut, RateLimited, MissingCredentials, QuotaExceeded, DependencyMissing,
)


def service_name(service_id: str) -> str:
    try:
        from studio_core.services import service_info

        return service_info(service_id).name
    except StudioError:
        return service_id


def fallback_chain(chosen: str, order: Iterable[str]) -> list[str]:
    """The chosen service first, then the user's order, each once."""
    chain: list[str] = []
    for sid in (chosen, *order):
        if sid and sid not in chain:
            chain.append(sid)
    return chain


def _with_service(image: JobImage, service_id: str, chosen: str) -> JobImage:
    info = dict(image.info)
    info["service"] = service_id
    if service_id != chosen:
        info["fallback_from"] = chosen
    return dataclasses.replace(image, info=tuple(sorted(info.items())))


async def generate_with_fallback(
    request: GenerationRequest,
    *,
    job_id: str,
    get_provider: Callable[[str], Any],
    order: Iterable[str] = (),
    name_of: Callable[[str], str] = service_name,
    fallback_on: tuple[type[BaseException], ...] = FALLBACK_ON,
) -> AsyncIterator[JobEvent]:
    """Yield the job events of the first service in ``[request.service, *order]`` that can do the job.

    ``get_provider(service_id)`` returns a Provider (``ServiceRegistry.provider`` fits) and
    may raise DependencyMissing. A fallback service gets the request with its own
    ``service`` and an empty ``model`` (its default from Settings), since the chosen
    service's model means nothing there. Raises the chosen service's error when there is
    nowhere to fall back to, else GenerationFailed naming every service's reason.
    Cancellation propagates unchanged.
    """
    chosen = request.service
    chain = fallback_chain(chosen, order)
    failures: list[tuple[str, StudioError]] = []
    for idx, sid in enumerate(chain):
        sub = request if idx == 0 else request.replace(service=sid, model="")
        if idx > 0:
            prev, why = failures[-1]
            yield JobNotice(job_id, f"{name_of(prev)} is unavailable ({why.user_message}) Trying {name_of(sid)} instead.")
        made_image = False
        try:
            provider = get_provider(sid)
            async with contextlib.aclosing(provider.generate(sub, job_id=job_id)) as events:
                async for ev in events:
                    if isinstance(ev, JobImage):
                        made_image = True
                        ev = _with_service(ev, sid, chosen)
                    yield ev
        except fallback_on as exc:
            if made_image or not isinstance(exc, StudioError):
                raise
            log.info("service %s unavailable (%s); %s", sid, exc, "falling back" if idx + 1 < len(chain) else "no fallback left")
            failures.append((sid, exc))
            continue
        if idx > 0:
            yield JobNotice(job_id, f"Made with {name_of(sid)} because {name_of(chosen)} was unavailable.")
        return
    if len(failures) == 1:
        raise failures[0][1]
    summary = "; ".join(f"{name_of(sid)}: {exc.user_message}" for sid, exc in failures)
    raise GenerationFailed("all services failed: " + "; ".join(f"{sid}: {exc}" for sid, exc in failures),
                           user_message=f"No service could make the image. {summary}",
                           retryable=any(exc.retryable for _, exc in failures))
