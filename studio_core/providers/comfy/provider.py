"""ComfyProvider: text-to-image on a local (or LAN) ComfyUI server.

Contract (see :class:`studio_core.providers.base.Provider`): all methods run on the asyncio
loop. ``generate`` opens (or reuses) the shared websocket, posts the graph with its own
``prompt_id`` and ``client_id``, yields progress, previews and each image as soon as it is
downloaded, and ends when ComfyUI says the job is done (``executing`` with ``node: null``).
Cancelling the iterating task removes the job from ComfyUI's queue or interrupts it.
A per-job time limit (default 20 min, env ``COMFYUI_TIMEOUT`` in ms) raises JobTimedOut
after any finished images have been yielded.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import random
import time
import uuid
from typing import Any, AsyncIterator, Mapping

from studio_core.errors import (
    GenerationFailed,
    InvalidResponse,
    JobTimedOut,
    NotAComfyServer,
    NotAnImage,
    ProviderUnavailable,
    RequestTimedOut,
    StudioError,
)
from studio_core.models import (
    GenerationRequest,
    JobEvent,
    JobImage,
    JobNotice,
    JobProgress,
    JobStarted,
    ModelInfo,
    ProviderStatus,
    ServiceState,
)
from studio_core.input_store import InputStore
from studio_core.inputs import ImageInputs
from studio_core.providers.comfy import custom_workflow, input_nodes, object_info as oi, workflow
from studio_core.providers.comfy.client import (
    START_HINT,
    STATUS_TIMEOUT,
    ComfyClient,
    Disconnected,
    Message,
    Preview,
    Reconnected,
    describe_reply,
    normalize_url,
)
from studio_core.providers.comfy.errors import execution_error, validation_error
from studio_core.imagecheck import check_image_bytes

log = logging.getLogger(__name__)

DEFAULT_URL = "http://127.0.0.1:8188"
DEFAULT_TIMEOUT_S = 20 * 60.0
HISTORY_POLL_S = (0.5, 1.0, 2.0, 4.0)
IDLE_POLL_S = 30.0  # even on a healthy socket, check /history after this long without a message
DEFAULT_SAMPLERS = ("euler", "euler_ancestral", "heun", "dpm_2", "lms", "dpmpp_2m", "dpmpp_sde", "dpmpp_2m_sde", "ddim", "uni_pc")
DEFAULT_SCHEDULERS = ("normal", "karras", "exponential", "sgm_uniform", "simple", "ddim_uniform")


def timeout_from_env(default: float = DEFAULT_TIMEOUT_S) -> float:
    raw = os.environ.get("COMFYUI_TIMEOUT", "").strip()
    if not raw:
        return default
    try:
        ms = float(raw)
    except ValueError:
        log.warning("COMFYUI_TIMEOUT=%r is not a number of milliseconds; using %.0f s", raw, default)
        return default
    return ms / 1000.0 if ms > 0 else default


_CANCELLED = object()  # put on a job's queue when cancel() removed it from ComfyUI's queue


class _Job:
    """What one running generate() knows about its server job."""

    def __init__(self, job_id: str, prompt_id: str, graph: dict[str, Any], queue: asyncio.Queue,
                 inputs: ImageInputs | None = None):
        self.job_id = job_id
        self.inputs = inputs
        self.queue = queue
        self.prompt_id = prompt_id
        self.graph = graph
        self.submitted = False
        self.started = False
        self.done = False
        self.cancel_requested = False
        self.withdrawing = False  # the pool is taking it off this queue to run it elsewhere
        self.seen: set[tuple[str, str, str]] = set()
        self.held_temp: list[dict[str, Any]] = []
        self.yielded = 0
        self.step = 0
        self.total = workflow.progress_total(graph)
        self.nodes_done = 0


class ComfyProvider:
    """A ComfyUI server. One httpx client and one websocket serve every job of this provider."""

    id = "comfyui"
    display_name = "ComfyUI (local)"

    def __init__(self, base_url: str, *, timeout_s: float | None = None, model: str = workflow.DEFAULT_CHECKPOINT,
                 lost_server_grace_s: float = 10.0, connection: Any = None, server_name: str = "",
                 input_store: InputStore | None = None):
        self._url_error: StudioError | None = None
        try:
            self.base_url = normalize_url(base_url)
        except StudioError as exc:
            self.base_url, self._url_error = str(base_url), exc
        self.timeout_s = timeout_s if timeout_s is not None else timeout_from_env()
        self.model = model or workflow.DEFAULT_CHECKPOINT
        self.lost_server_grace_s = lost_server_grace_s
        self.input_store = input_store  # where the images named by a request's inputs are kept
        self.server_name = server_name
        self._client = ComfyClient(self.base_url, connection=connection) if self._url_error is None else None
        self._object_info: dict[str, Any] | None = None
        self._jobs: dict[str, _Job] = {}
        self._late_cancels: set[asyncio.Task] = set()

    @property
    def client(self) -> ComfyClient:
        if self._client is None:
            raise self._url_error or ProviderUnavailable("no client")
        return self._client

    # ---- facts for the settings panel ------------------------------------------------

    async def system_stats(self) -> dict[str, Any]:
        client = self.client
        if client.prefix is None:
            return await client.probe()  # finds the route prefix with the same request
        data = await client.get_json("/system_stats", timeout=STATUS_TIMEOUT)
        if not isinstance(data, Mapping) or not isinstance(data.get("devices"), list):
            raise NotAComfyServer("/system_stats lacks 'devices'",
                                  user_message=f"The server at {self.base_url} is not a ComfyUI server: its "
                                               "/system_stats lists no devices. Check the address and port.")
        client.system_stats = dict(data)
        return dict(data)

    async def queue_info(self) -> dict[str, int]:
        data = await self.client.get_json("/queue", timeout=STATUS_TIMEOUT)
        running = data.get("queue_running") or [] if isinstance(data, Mapping) else []
        pending = data.get("queue_pending") or [] if isinstance(data, Mapping) else []
        return {"running": len(running), "pending": len(pending)}

    async def object_info(self, *, refresh: bool = False) -> dict[str, Any]:
        if self._object_info is None or refresh:
            data = await self.client.get_json("/object_info", timeout=60)
            if not isinstance(data, Mapping):
                raise NotAComfyServer("/object_info is not an object")
            self._object_info = dict(data)
        return self._object_info

    async def list_models(self) -> tuple[ModelInfo, ...]:
        info = await self.object_info()
        out = [ModelInfo(n, n.rsplit("/", 1)[-1].rsplit(".", 1)[0], oi.guess_family(n)) for n in oi.checkpoints(info)]
        out += [ModelInfo(n, n.rsplit("/", 1)[-1].rsplit(".", 1)[0], oi.guess_family(n) or "flux", notes="diffusion model")
                for n in oi.diffusion_models(info)]
        return tuple(out)

    def samplers(self) -> tuple[str, ...]:
        """The server's samplers once object_info() has been fetched; common defaults before that."""
        return oi.samplers(self._object_info or {}) or DEFAULT_SAMPLERS

    def schedulers(self) -> tuple[str, ...]:
        return oi.schedulers(self._object_info or {}) or DEFAULT_SCHEDULERS

    async def check(self) -> ProviderStatus:
        if self._url_error is not None:
            return ProviderStatus(ServiceState.error, self._url_error.user_message)
        try:
            stats = await self.system_stats()
            queue = await self.queue_info()
        except NotAComfyServer as exc:
            return ProviderStatus(ServiceState.error, exc.user_message, (("error", str(exc)),))
        except ProviderUnavailable as exc:
            return ProviderStatus(ServiceState.unreachable,
                                  f"ComfyUI is not running at {self.base_url}. {START_HINT}", (("error", str(exc)),))
        except RequestTimedOut as exc:
            return ProviderStatus(ServiceState.unreachable, exc.user_message, (("error", str(exc)),))
        except StudioError as exc:
            return ProviderStatus(ServiceState.error, exc.user_message, (("error", str(exc)),))
        system = stats.get("system") or {}
        dev = (stats.get("devices") or [{}])[0] or {}
        details: dict[str, Any] = {
            "url": self.base_url,
            "version": system.get("comfyui_version") or "",
            "python": str(system.get("python_version", "")).split(" ")[0],
            "pytorch": system.get("pytorch_version") or "",
            "device": dev.get("name") or "",
            "device_type": dev.get("type") or "",
            "vram_total": dev.get("vram_total"),
            "vram_free": dev.get("vram_free"),
            "torch_vram_total": dev.get("torch_vram_total"),
            "torch_vram_free": dev.get("torch_vram_free"),
            "queue_running": queue["running"],
            "queue_pending": queue["pending"],
            "queue_length": queue["running"] + queue["pending"],
        }
        version = details["version"] or "version unknown"
        return ProviderStatus(ServiceState.ready, f"ComfyUI {version} on {details['device'] or 'unknown device'}",
                              tuple(details.items()))

    # ---- generation ------------------------------------------------------------------

    async def prepare(self, request: GenerationRequest,
                      inputs: ImageInputs | None = None) -> tuple[dict[str, Any], int | None]:
        """The graph this request runs and the seed it uses. ``inputs`` (else the request's
        own ``inputs`` field, once it has one) go into builder graphs only."""
        seed = request.seed if request.seed is not None else random.randrange(2**32)
        text = request.workflow.graph if request.workflow else None
        if text:
            graph = custom_workflow.parse(text)
            mapping = custom_workflow.find_inputs(graph)
            user_map = request.workflow.mapping if request.workflow else None
            if user_map:
                mapping = mapping.merged(custom_workflow.WorkflowMap.from_value(user_map))
            if isinstance(user_map, Mapping):
                # An explicit None is the user's "(not used)": the automatic guess must not fill it.
                mapping = dataclasses.replace(mapping, **{k: None for k in custom_workflow.FIELDS
                                                          if k in user_map and user_map[k] is None})
            values = {"prompt": request.prompt, "negative": request.negative_prompt, "seed": seed,
                      "width": request.width, "height": request.height, "steps": request.steps}
            # A workflow without a seed input has no seed to report.
            return custom_workflow.apply(graph, mapping, values), (seed if mapping.seed else None)
        req = request.replace(seed=seed, model=request.model or self.model)
        return workflow.build(req, await self.object_info(), _inputs_of(request, inputs)), seed

    async def upload_inputs(self, graph: dict[str, Any]) -> None:
        """Put the input images ``graph`` loads on the server (each once; see ComfyClient.upload_input)."""
        names = input_nodes.images_of(graph)
        if not names:
            return
        if self.input_store is None:
            raise GenerationFailed("graph loads input images but the provider has no input store",
                                   user_message="The input images of this request could not be found.")
        client, store = self.client, self.input_store
        if client.prefix is None:
            await client.probe()  # once, before the uploads run side by side

        async def one(name: str) -> tuple[str, str]:
            data = await asyncio.to_thread(store.read, name[len(input_nodes.UPLOAD_PREFIX):-len(".png")])
            return name, await client.upload_input(name, data)

        # Side by side: each image is read and checked on its own thread while the others'
        # HEAD checks and uploads are on the wire.
        renamed = {name: stored for name, stored in await asyncio.gather(*(one(n) for n in names)) if stored != name}
        for node in graph.values():  # only if the server chose another name (it never should)
            image = node.get("inputs", {}).get("image")
            if node.get("class_type") in ("LoadImage", "LoadImageMask") and image in renamed:
                node["inputs"]["image"] = renamed[image]

    async def generate(self, request: GenerationRequest, *, job_id: str,
                       inputs: ImageInputs | None = None) -> AsyncIterator[JobEvent]:
        graph, seed = await self.prepare(request, inputs)
        client = self.client
        prompt_id = str(uuid.uuid4())
        queue = client.subscribe(prompt_id)
        job = _Job(job_id, prompt_id, graph, queue, None if request.workflow else _inputs_of(request, inputs))
        deadline = time.monotonic() + self.timeout_s
        self._jobs[job_id] = job
        try:
            await client.ensure_listening()
            await self.upload_inputs(graph)
            await self._submit(job)
            if job.cancel_requested:  # cancel() arrived while the POST was in flight
                await self._cancel_on_server(job)
                job.done = True
                return
            yield JobStarted(job_id, server_job_id=job.prompt_id)
            try:
                async for event in self._follow(job, queue, deadline, seed):
                    yield event
            except StudioError:
                if job.yielded == 0 and job.held_temp:  # finished previews are results too: hand them up first
                    async for event in self._yield_held(job, seed):
                        yield event
                raise
            if job.yielded == 0 and not job.cancel_requested:
                async for event in self._from_history(job, seed, final=True):
                    if event is not None:
                        yield event
            if job.yielded == 0 and job.held_temp:
                async for event in self._yield_held(job, seed):
                    yield event
        finally:
            client.unsubscribe(job.prompt_id)
            self._jobs.pop(job_id, None)
            if job.submitted and not job.done:
                try:
                    await asyncio.wait_for(asyncio.shield(self._cancel_on_server(job)), 5)
                except (StudioError, asyncio.TimeoutError, asyncio.CancelledError):
                    log.info("could not cancel ComfyUI job %s", prompt_id)

    async def _submit(self, job: _Job) -> None:
        body = {"prompt": job.graph, "client_id": self.client.client_id, "prompt_id": job.prompt_id}
        # Submitted from the moment the request may reach the server: a cancel during the POST must
        # still delete/interrupt our prompt_id there (generate()'s finally does that).
        job.submitted = True
        post = asyncio.ensure_future(self.client.post("/prompt", body))
        try:
            r = await asyncio.shield(post)
        except asyncio.CancelledError:
            # A server that ignores client ids (2024) names the job only in this reply: cancel
            # that id when the reply arrives, or the job runs for nobody.
            task = asyncio.ensure_future(self._cancel_when_answered(post, job.prompt_id))
            self._late_cancels.add(task)
            task.add_done_callback(self._late_cancels.discard)
            raise
        try:
            data = r.json()
        except ValueError:
            data = r.text
        if r.status_code == 200 and isinstance(data, Mapping):
            server_id = str(data.get("prompt_id") or job.prompt_id)
            if server_id != job.prompt_id:  # servers before 2025 pick their own id
                self.client.rekey(job.prompt_id, server_id)
                job.prompt_id = server_id
            if not data.get("node_errors"):
                return
        if r.status_code == 200:
            # Queued, but ComfyUI silently dropped the invalid outputs: do not run half a workflow.
            await self._cancel_on_server(job)
            job.done = True
            raise validation_error(data, graph=job.graph, status=200)
        if r.status_code == 404:
            what = describe_reply(r)
            raise NotAComfyServer(f"POST /prompt → {what}",
                                  user_message=f"The server at {self.base_url} is not a ComfyUI server (POST /prompt gave "
                                               f"{what}). Check the address and port.")
        job.done = True
        raise validation_error(data, graph=job.graph, status=r.status_code)

    async def _cancel_when_answered(self, post: asyncio.Future, own_id: str) -> None:
        try:
            r = await asyncio.wait_for(post, 60)
            data = r.json() if r.status_code == 200 else None
        except (StudioError, ValueError, asyncio.TimeoutError) as exc:
            log.info("POST /prompt of a cancelled job ended without an id (%s)", type(exc).__name__)
            return
        server_id = str(data.get("prompt_id") or own_id) if isinstance(data, Mapping) else ""
        # Our own id too: the earlier delete may have reached the server before the job was queued.
        if server_id:
            await self.cancel_prompt(server_id)

    async def cancel_prompt(self, prompt_id: str) -> None:
        """Delete and stop ``prompt_id`` on the server (a job nobody follows any more); never raises."""
        ghost = _Job("", prompt_id, {}, asyncio.Queue())
        try:
            await asyncio.wait_for(self._cancel_on_server(ghost), 10)
        except (StudioError, asyncio.TimeoutError) as exc:
            log.info("could not cancel ComfyUI prompt %s: %s", prompt_id, type(exc).__name__)

    async def _follow(self, job: _Job, queue: asyncio.Queue, deadline: float, seed: int | None) -> AsyncIterator[JobEvent]:
        """Yield events until the server says the job ended, or raise."""
        polling = False  # after a drop, /history is the source of truth until the socket is back and quiet
        poll_i = 0
        lost_since: float | None = None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                limit = f"{self.timeout_s / 60:.0f} minutes" if self.timeout_s >= 120 else f"{self.timeout_s:.0f} seconds"
                raise JobTimedOut(f"job {job.prompt_id} exceeded {self.timeout_s:.1f}s",
                                  user_message=f"The generation took longer than {limit} and was stopped. "
                                               "Images finished before that are kept.")
            wait = min(left, HISTORY_POLL_S[min(poll_i, len(HISTORY_POLL_S) - 1)] if polling else IDLE_POLL_S)
            try:
                item = await asyncio.wait_for(queue.get(), wait)
            except asyncio.TimeoutError:
                item = None
            if item is None:
                if time.monotonic() >= deadline:
                    continue
                poll_i += 1
                try:
                    finished = False
                    async for event in self._from_history(job, seed, final=False):
                        if event is None:
                            finished = True
                        else:
                            yield event
                    lost_since = None
                    if finished:
                        return
                except ProviderUnavailable as exc:
                    now = time.monotonic()
                    lost_since = lost_since or now
                    if now - lost_since >= self.lost_server_grace_s:
                        job.done = True  # nothing left to cancel on a server that is gone
                        raise ProviderUnavailable(str(exc), user_message=(
                            f"ComfyUI at {self.base_url} stopped answering during the generation (did it crash or "
                            f"close?). {START_HINT}")) from exc
                    polling = True
                continue
            if isinstance(item, Disconnected):
                polling, poll_i = True, 0
                yield JobNotice(job.job_id, "Connection to ComfyUI lost, reconnecting…")
                continue
            if isinstance(item, Reconnected):
                poll_i = 0
                yield JobNotice(job.job_id, "Reconnected to ComfyUI; catching up…")
                continue
            if item is _CANCELLED:
                job.done = True
                return
            if isinstance(item, Preview):
                yield JobProgress(job.job_id, job.step, job.total, preview=item.image, preview_mime=item.mime)
                continue
            assert isinstance(item, Message)
            t, d = item.type, item.data
            if t == "execution_start":
                job.started = True
            elif t == "executing":
                node = d.get("node")
                if node is None:
                    job.done = True
                    return
                job.started = True
                if job.total == 0:
                    job.nodes_done += 1
                    cls = (job.graph.get(str(node)) or {}).get("class_type", "")
                    yield JobProgress(job.job_id, job.nodes_done - 1, len(job.graph), message=f"Running {cls}")
            elif t == "execution_cached":
                if job.total == 0:
                    job.nodes_done += len(d.get("nodes") or ())
            elif t == "progress":
                node = str(d.get("node") or "")
                # With a sampler in the graph only its steps count; other nodes' progress would make the bar jump.
                if job.total and "sampler" not in str((job.graph.get(node) or {}).get("class_type", "")).lower():
                    continue
                job.step, job.total = int(d.get("value") or 0), int(d.get("max") or 0) or job.total
                yield JobProgress(job.job_id, job.step, job.total)
            elif t == "executed":
                async for event in self._take_outputs(job, {str(d.get("node")): d.get("output") or {}}, seed):
                    yield event
            elif t == "execution_error":
                job.done = True
                raise execution_error(d)
            elif t == "execution_interrupted":
                job.done = True
                if job.cancel_requested:
                    return
                raise GenerationFailed(f"job {job.prompt_id} interrupted on the server",
                                       user_message="The generation was stopped on the ComfyUI server.")
            elif t == "execution_success":
                # The final "executing null" should follow at once; if a lost reconnect swallows it,
                # /history (written before that message) ends the job instead.
                polling, poll_i = True, 0
            # progress_state, status: nothing to do

    async def _from_history(self, job: _Job, seed: int | None, *, final: bool) -> AsyncIterator[JobEvent | None]:
        """Images from /history; yields None (and sets job.done) when the entry says finished."""
        data = await self.client.get_json(f"/history/{job.prompt_id}")
        entry = data.get(job.prompt_id) if isinstance(data, Mapping) else None
        if not isinstance(entry, Mapping):
            if job.cancel_requested:
                job.done = True  # deleted from the queue before it ran: nothing will ever arrive
                yield None
                return
            if not final and not job.withdrawing:  # gone from the queue because withdraw() took it
                q = await self.client.get_json("/queue")
                ids = {item[1] for key in ("queue_running", "queue_pending") for item in (q.get(key) or [])
                       if isinstance(item, list) and len(item) > 1}
                if job.prompt_id not in ids:
                    job.done = True
                    raise GenerationFailed(f"job {job.prompt_id} is neither queued nor in history",
                                           user_message="ComfyUI lost this job (was the server restarted?). Try again.")
            return
        status = entry.get("status") if isinstance(entry.get("status"), Mapping) else {}
        async for event in self._take_outputs(job, entry.get("outputs") or {}, seed):
            yield event
        if status.get("status_str") == "error":
            job.done = True
            for name, payload in reversed(status.get("messages") or []):
                if name == "execution_error" and isinstance(payload, Mapping):
                    raise execution_error(payload)
                if name == "execution_interrupted":
                    if job.cancel_requested:
                        yield None
                        return
                    raise GenerationFailed("interrupted (history)", user_message="The generation was stopped on the ComfyUI server.")
            raise GenerationFailed("history status error", user_message="ComfyUI reported an error for this job.")
        # Newer servers may write an entry before the job ends; only the status says it finished.
        # An entry without a status (older or minimal servers) counts as finished once it has outputs.
        finished = (status.get("completed") is True or status.get("status_str") == "success") if status \
            else "outputs" in entry
        if finished:
            job.done = True
            if job.yielded == 0 and job.held_temp:
                async for event in self._yield_held(job, seed):
                    yield event
            yield None

    async def _take_outputs(self, job: _Job, outputs: Mapping[str, Any], seed: int | None) -> AsyncIterator[JobEvent]:
        for node_id in sorted(outputs, key=lambda n: (len(n), n)):
            out = outputs[node_id]
            for ref in (out.get("images") or []) if isinstance(out, Mapping) else []:
                if not isinstance(ref, Mapping) or not ref.get("filename"):
                    continue
                key = (str(ref.get("filename")), str(ref.get("subfolder") or ""), str(ref.get("type") or "output"))
                if key in job.seen:
                    continue
                job.seen.add(key)
                if key[2] == "temp":
                    job.held_temp.append(dict(ref))  # a PreviewImage; used only if nothing was saved
                    continue
                yield await self._download(job, key, seed)

    async def _yield_held(self, job: _Job, seed: int | None) -> AsyncIterator[JobEvent]:
        held, job.held_temp = job.held_temp, []
        for ref in held:
            key = (str(ref.get("filename")), str(ref.get("subfolder") or ""), "temp")
            yield await self._download(job, key, seed)

    async def _download(self, job: _Job, key: tuple[str, str, str], seed: int | None) -> JobImage:
        filename, subfolder, kind = key
        # The names only travel back to the server as query parameters; nothing is written under them.
        r = await self.client.request("GET", "/view", params={"filename": filename, "subfolder": subfolder, "type": kind},
                                      timeout=120)
        if r.status_code != 200:
            raise InvalidResponse(f"/view {kind}/{subfolder}/{filename} → HTTP {r.status_code}",
                                  user_message=f"ComfyUI finished, but the image could not be downloaded (HTTP {r.status_code}).")
        data = r.content
        try:
            img = await asyncio.to_thread(check_image_bytes, data)
        except NotAnImage as exc:
            raise InvalidResponse(f"/view {filename}: {exc}",
                                  user_message="ComfyUI sent back data that is not an image.") from exc
        mime = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}.get(img.format or "", "image/png")
        index = job.yielded
        job.yielded += 1
        return JobImage(
            job.job_id, data, mime=mime, seed=seed, index=index,
            extra_text=(("prompt", json.dumps(job.graph, ensure_ascii=False)),),
            info=(("server", f"{self.server_name} ({self.base_url})" if self.server_name else self.base_url),
                  ("server_url", self.base_url), ("prompt_id", job.prompt_id), ("comfy_filename", filename))
                 # Digests only: the images themselves stay in the input store.
                 + ((("inputs", job.inputs.to_dict()),) if job.inputs is not None and not job.inputs.empty else ()),
        )

    # ---- cancellation ----------------------------------------------------------------

    async def _cancel_on_server(self, job: _Job) -> None:
        """Drop the job from the queue, then interrupt it: whichever state it is in, it stops.

        Delete first: a job still pending is gone, and one that started in the meantime is
        running by the time the interrupt arrives. Reading /queue and choosing one would let a
        job that starts between the read and the choice run on.
        """
        job.cancel_requested = True
        client = self.client
        await client.post("/queue", {"delete": [job.prompt_id]})
        if client.system_stats is None:
            try:
                await self.system_stats()
            except StudioError:
                pass
        if client.targeted_interrupt:
            await client.post("/interrupt", {"prompt_id": job.prompt_id})
            return
        # Older servers ignore the prompt_id and stop whatever runs, perhaps someone else's job;
        # after the delete our job can only be running or finished, so look before stopping.
        q = await client.get_json("/queue", timeout=STATUS_TIMEOUT)
        running = {i[1] for i in (q.get("queue_running") or []) if isinstance(i, list) and len(i) > 1}
        if job.prompt_id in running:
            await client.post("/interrupt", {"prompt_id": job.prompt_id})

    def job_waiting(self, job_id: str, prompt_id: str) -> bool:
        """True while ``job_id`` is queued on the server as ``prompt_id`` and has not started."""
        job = self._jobs.get(job_id)
        return job is not None and job.prompt_id == prompt_id and job.submitted and not (
            job.started or job.done or job.cancel_requested or job.withdrawing)

    async def withdraw(self, job_id: str, prompt_id: str) -> bool:
        """Take a job that has not started off the server's queue, so the pool can run it on
        another server; its generate() then ends without images. True only when the server
        confirms it is gone: a job that started (or finished) in the meantime stays and runs
        here. Unlike cancel() this never interrupts, so a job that just started is not lost."""
        if not self.job_waiting(job_id, prompt_id):
            return False
        job = self._jobs[job_id]
        job.withdrawing = True
        try:
            client = self.client
            # ComfyUI deletes only from the pending list; a running or finished job ignores this.
            await client.post("/queue", {"delete": [prompt_id]})
            q = await client.get_json("/queue", timeout=STATUS_TIMEOUT)
            queued = {i[1] for key in ("queue_running", "queue_pending") for i in (q.get(key) or [])
                      if isinstance(i, list) and len(i) > 1}
            if prompt_id in queued or job.started or job.done:
                return False
            ran = await client.get_json(f"/history/{prompt_id}", timeout=STATUS_TIMEOUT)
            if isinstance(ran, Mapping) and prompt_id in ran:
                return False
        finally:
            job.withdrawing = False
        job.cancel_requested = job.done = True
        job.queue.put_nowait(_CANCELLED)
        return True

    async def cancel(self, job_id: str) -> None:
        job = self._jobs.get(job_id)
        if job is None or job.done:
            return
        await self._cancel_on_server(job)
        if not job.started:
            # Deleted before it ran, so no message will come; if it had just started, the interrupt
            # stops it and its late messages go nowhere.
            job.done = True
            job.queue.put_nowait(_CANCELLED)

    async def aclose(self) -> None:
        if self._late_cancels:
            await asyncio.wait(set(self._late_cancels), timeout=5)
        if self._client is not None:
            await self._client.aclose()


def _inputs_of(request: GenerationRequest, inputs: ImageInputs | None) -> ImageInputs | None:
    found = inputs if inputs is not None else getattr(request, "inputs", None)
    return found if isinstance(found, ImageInputs) else None


def create(settings: Any, secrets: Any = None) -> ComfyProvider:
    url = getattr(settings, "comfy_active_url", "") or getattr(settings, "comfy_url", "") or DEFAULT_URL
    return ComfyProvider(url,
                         model=getattr(settings, "comfy_model", "") or workflow.DEFAULT_CHECKPOINT)
