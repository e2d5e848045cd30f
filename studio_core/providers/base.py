"""The one interface every image service implements."""

from __future__ import annotations

from typing import AsyncIterator, Protocol, runtime_checkable

from studio_core.models import GenerationRequest, JobEvent, ModelInfo, ProviderStatus


@runtime_checkable
class Provider(Protocol):
    """An image service: local ComfyUI or a cloud API.

    Contract:
    - All methods run on the asyncio loop; none blocks it (blocking SDK calls go to a thread).
    - ``generate`` returns an async iterator of job events for one request. It yields
      ``JobStarted``, zero or more ``JobProgress``/``JobNotice``, one ``JobImage`` per
      image, then ends. Failures are raised as :class:`~studio_core.errors.StudioError`
      subclasses, never library exceptions. Cancelling the task that iterates it cancels
      the job on the server (its ``finally`` sends the cancel); images already yielded stay
      with the caller.
    - ``check`` never raises for an unreachable or misconfigured service: it reports that
      in the returned status.
    - ``aclose`` releases connections; the provider is unusable afterwards.
    """

    id: str
    display_name: str

    async def check(self) -> ProviderStatus: ...

    async def list_models(self) -> tuple[ModelInfo, ...]: ...

    def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]: ...

    async def cancel(self, job_id: str) -> None: ...

    async def aclose(self) -> None: ...
