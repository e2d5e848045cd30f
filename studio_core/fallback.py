"""The fallback policy over all services: run a request through the user's ordered fallback
services when the chosen one is unavailable.

"Unavailable" means the service could not be used at all: unreachable, server errors or
rate limits that outlasted the provider's own retries, timeouts, no key, used-up credit,
or its SDK missing from this build. A refused prompt, a rejected key or a bad setting is
the user's to fix, so those end the job instead of silently switching services. Once a
service has produced an image, the job stays with it; so does a request that was sent and
got no answer (``exc.sent``), since the service may still be making, and billing, it.

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
            # A request that reached the service and then timed out (or lost its connection)
            # may still run there and be billed: sending it to the next service pays twice.
            if made_image or not isinstance(exc, StudioError) or getattr(exc, "sent", False):
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


def request_for_image(request: GenerationRequest, image: JobImage) -> GenerationRequest:
    """The request as it was really run for ``image``: service and model from its info.

    Save images with this, so a fallback image's file name and metadata name the
    service that made it, not the one that was chosen.
    """
    info = dict(image.info)
    service, model = info.get("service"), info.get("model")
    changes: dict[str, Any] = {}
    if isinstance(service, str) and service and service != request.service:
        changes["service"] = service
    if isinstance(model, str) and model and model != request.model:
        changes["model"] = model
    return request.replace(**changes) if changes else request


class FallbackProvider:
    """A Provider for the job queue that runs its service with the user's fallback list.

    ``JobQueue(provider_for=fallback_provider_for(registry.provider, lambda: settings.current.fallback_services))``
    gives every job the policy above without the queue knowing about it. The registry
    owns the real providers, so :meth:`aclose` closes nothing.
    """

    def __init__(self, service_id: str, get_provider: Callable[[str], Any],
                 order: Callable[[], Iterable[str]] | Iterable[str] = ()):
        self.id = service_id
        self.display_name = service_name(service_id)
        self._get = get_provider
        self._order = order

    def _chain(self) -> list[str]:
        order = self._order() if callable(self._order) else self._order
        return fallback_chain(self.id, order)

    async def check(self) -> Any:
        from studio_core.providers.cloud.common import status_from_error

        try:
            return await self._get(self.id).check()
        except Exception as exc:  # check() reports, never raises
            return status_from_error(exc)

    async def list_models(self) -> tuple[Any, ...]:
        return await self._get(self.id).list_models()

    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        chain = self._chain()
        async with contextlib.aclosing(generate_with_fallback(request, job_id=job_id, get_provider=self._get,
                                                              order=chain[1:])) as events:
            async for ev in events:
                yield ev

    async def cancel(self, job_id: str) -> None:
        for sid in self._chain():
            try:
                await self._get(sid).cancel(job_id)
            except Exception:  # noqa: BLE001 - a service that can't be built has nothing to cancel
                log.debug("cancel on %s skipped", sid)

    async def aclose(self) -> None:
        return None


def fallback_provider_for(get_provider: Callable[[str], Any],
                          order: Callable[[], Iterable[str]] | Iterable[str] = ()) -> Callable[[str], FallbackProvider]:
    """A ``provider_for`` for :class:`~studio_core.jobs.JobQueue` with the fallback policy built in."""
    return lambda service_id: FallbackProvider(service_id, get_provider, order)
