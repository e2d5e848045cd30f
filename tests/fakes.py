"""FakeProvider: a scriptable provider for GUI and queue tests (krita's MockClient idea).

It lives in tests/, never in the product. Script it with a list of steps; each step is
an event to yield (with ``{job_id}`` filled in), an exception to raise, or a float to sleep.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import replace
from typing import Any, AsyncIterator

from studio_core.models import (
    GenerationRequest,
    JobEvent,
    JobImage,
    JobProgress,
    JobStarted,
    ModelInfo,
    ProviderStatus,
    ServiceState,
)


def png_bytes(width: int = 64, height: int = 64, color=(200, 80, 40, 255)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(buf, format="PNG")
    return buf.getvalue()


class FakeProvider:
    def __init__(self, id: str = "fake", *, steps: int = 3, delay: float = 0.0, script: list[Any] | None = None,
                 status: ProviderStatus | None = None):
        self.id = id
        self.display_name = f"Fake {id}"
        self.steps = steps
        self.delay = delay
        self.script = script
        self.status = status or ProviderStatus(ServiceState.ready, "ready")
        self.requests: list[GenerationRequest] = []
        self.cancelled: list[str] = []
        self.closed = False

    async def check(self) -> ProviderStatus:
        return self.status

    async def list_models(self) -> tuple[ModelInfo, ...]:
        return (ModelInfo("fake-model", "Fake model"),)

    async def generate(self, request: GenerationRequest, *, job_id: str) -> AsyncIterator[JobEvent]:
        self.requests.append(request)
        try:
            if self.script is not None:
                for step in self.script:
                    if isinstance(step, BaseException):
                        raise step
                    if isinstance(step, (int, float)):
                        await asyncio.sleep(step)
                        continue
                    yield replace(step, job_id=job_id)
                return
            yield JobStarted(job_id)
            for i in range(1, self.steps + 1):
                await asyncio.sleep(self.delay)
                yield JobProgress(job_id, i, self.steps)
            for n in range(request.batch):
                seed = (request.seed or 1234) + n
                yield JobImage(job_id, png_bytes(), seed=seed, index=n, info=(("provider", self.id),))
        except asyncio.CancelledError:
            self.cancelled.append(job_id)
            raise

    async def cancel(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    async def aclose(self) -> None:
        self.closed = True
