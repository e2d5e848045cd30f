"""A protocol-faithful fake ComfyUI server for tests (asyncio streams, no extra packages).

Replies and messages are shaped from the recordings of a real ComfyUI 0.3.64 in
tests/data/comfy_recorded.json (system_stats, execution_error, validation bodies, the
order of websocket messages, binary preview layouts). It does what a server without model
weights cannot: sampler steps with progress, previews (type 1, or type 4 after the
``feature_flags`` handshake), out-of-memory errors; and faults: dying mid-job, dropping
sockets, non-image ``/view`` bytes, hostile file names. ``version="2024"`` drops what the
March-2024 server lacks (execution_success, progress_state, feature flags, comfyui_version).
"""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import io
import json
import struct
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data"
RECORDED = json.loads((DATA / "comfy_recorded.json").read_text())
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def png(width: int = 32, height: int = 32, color=(30, 120, 200)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (max(1, width), max(1, height)), color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg(width: int = 16, height: int = 16, pad_to: int = 0) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 50, 50)).save(buf, format="JPEG")
    data = buf.getvalue()
    return data + b"\0" * max(0, pad_to - len(data))  # bytes after the JPEG end marker are ignored by decoders


@dataclass
class FakeJob:
    prompt_id: str
    number: int
    graph: dict[str, Any]
    client_id: str | None
    state: str = "pending"  # pending | running | done


@dataclass
class Behaviour:
    step_delay: float = 0.0
    previews: bool = True
    fail: str = ""  # "" | "oom" | "error"
    die_at_step: int | None = None  # close everything at this sampler step
    drop_ws_at_step: int | None = None  # close the job's socket(s) at this sampler step
    mute_after_drop: bool = False  # after a drop, never send this job's messages again (lost reconnect)
    view_body: bytes | None = None  # what /view returns instead of the file
    filename: str = "studio_00001_.png"
    subfolder: str = ""
    out_type: str = "output"
    hang: bool = False  # never finish
    hold: bool = False  # do not start jobs until release()
    missing_models: bool = False  # checkpoints list empty → 400 value_not_in_list
    node_errors_on_200: bool = False
    html: bool = False  # answer every route with a web page (not ComfyUI)
    run_before_reply: bool = False  # run the whole job before answering POST /prompt (messages precede the id)
    skip_final_executing: bool = False  # lose the last "executing null" (as a silently lost reconnect does)
    preview_bytes: int = 0  # pad each preview to this size (receive limits)
    api_only: bool = False  # a proxy that passes only /api/... (including /api/ws); bare routes get its 404 page
    release_on_queue_read: bool = False  # with hold: a GET /queue lets the held jobs start right after it is answered
    extra: dict[str, Any] = field(default_factory=dict)


class FakeComfyServer:
    def __init__(self, *, version: str = "2025", behaviour: Behaviour | None = None,
                 object_info: dict[str, Any] | None = None):
        self.version = version
        self.b = behaviour or Behaviour()
        self.object_info = object_info if object_info is not None else json.loads(
            (DATA / ("comfy_object_info_0.3.64.json" if version == "2025" else "comfy_object_info_2024.json")).read_text())
        self.requests: list[tuple[str, str, Any]] = []
        self.raw_paths: list[str] = []  # every request path as sent, prefix included
        self.jobs: dict[str, FakeJob] = {}
        self.history: dict[str, Any] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.sockets: dict[str, list[asyncio.StreamWriter]] = {}
        self.flags: dict[str, bool] = {}
        self.muted: set[str] = set()
        self.ws_connects = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._pending: asyncio.Queue[FakeJob] = asyncio.Queue()
        self._interrupt = False
        self._release = asyncio.Event()
        self._counter = 0
        self._server: asyncio.base_events.Server | None = None
        self._worker: asyncio.Task | None = None
        self.url = ""

    # ---- lifecycle -----------------------------------------------------------------

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._worker = asyncio.create_task(self._run_jobs())
        if not self.b.hold:
            self._release.set()
        return self.url

    def release(self) -> None:
        self._release.set()

    async def die(self) -> None:
        """The server process goes away: listening stops and every connection closes."""
        if self._server:
            self._server.close()
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()
        if self._worker:
            self._worker.cancel()

    async def stop(self) -> None:
        await self.die()
        if self._server:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except (asyncio.TimeoutError, Exception):
                pass

    async def __aenter__(self) -> FakeComfyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def posted(self, path: str) -> list[Any]:
        return [body for m, p, body in self.requests if m == "POST" and p == path]

    # ---- HTTP ----------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, target, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                url = urlsplit(target)
                self.raw_paths.append(url.path)
                path = url.path
                if self.b.api_only:
                    path = path[4:] if path.startswith("/api/") else "/not-passed-by-the-proxy"
                elif path.startswith("/api/") and self.version == "2025":
                    path = path[4:]  # a 2025 server answers every route under /api too
                if headers.get("upgrade", "").lower() == "websocket" and path == "/ws" and not self.b.html:
                    await self._websocket(reader, writer, headers, parse_qs(url.query))
                    return
                if path == "/not-passed-by-the-proxy":
                    status, ctype, payload = 404, "text/html", b"<html><body>404: not found (proxy)</body></html>"
                else:
                    status, ctype, payload = await self._route(method, path, parse_qs(url.query, keep_blank_values=True), body)
                reason = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}.get(status, "X")
                writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n"
                             f"Server: Python/3.11 aiohttp/3.14.5\r\n\r\n".encode() + payload)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _route(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        js = "application/json; charset=utf-8"
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body
        self.requests.append((method, path, data))
        if self.b.html:
            if path == "/":
                return 200, "text/html", b"<!doctype html><html><body>My router</body></html>"
            return 404, "text/html", b"<html>404 Not Found</html>"

        def ok(obj: Any) -> tuple[int, str, bytes]:
            return 200, js, json.dumps(obj).encode()

        if method == "GET" and path == "/system_stats":
            return ok(RECORDED["system_stats_2025" if self.version == "2025" else "system_stats_2024"])
        if method == "GET" and path == "/queue":
            running = [[j.number, j.prompt_id, j.graph, {"client_id": j.client_id}, []] for j in self.jobs.values() if j.state == "running"]
            pending = [[j.number, j.prompt_id, j.graph, {"client_id": j.client_id}, []] for j in self.jobs.values() if j.state == "pending"]
            if self.b.release_on_queue_read:
                asyncio.get_running_loop().call_soon(self.release)  # the job starts just after this reply
            return ok({"queue_running": running, "queue_pending": pending})
        if method == "GET" and path == "/object_info":
            return ok(self.object_info)
        if method == "GET" and path.startswith("/history/"):
            pid = path.split("/", 2)[2]
            return ok({pid: self.history[pid]} if pid in self.history else {})
        if method == "GET" and path == "/view":
            key = (query.get("type", ["output"])[0], query.get("subfolder", [""])[0], query.get("filename", [""])[0])
            if self.b.view_body is not None:
                return 200, "image/png", self.b.view_body
            if key not in self.files:
                return 404, "text/plain", b""
            return 200, "image/png", self.files[key]
        if method == "POST" and path == "/prompt":
            res = self._post_prompt(data)
            if isinstance(res[0], FakeJob):  # run_before_reply
                job, pid = res
                await self._execute(job)
                self.jobs.pop(pid, None)
                return ok({"prompt_id": pid, "number": job.number, "node_errors": {}})
            return res
        if method == "POST" and path == "/queue":
            for pid in (data or {}).get("delete", []):
                job = self.jobs.get(pid)
                if job and job.state == "pending":
                    job.state = "deleted"
                    del self.jobs[pid]
            await self._broadcast_status()
            return 200, js, b""
        if method == "POST" and path == "/interrupt":
            pid = (data or {}).get("prompt_id") if isinstance(data, dict) else None
            running = [j for j in self.jobs.values() if j.state == "running"]
            if running and (pid is None or self.version == "2024" or running[0].prompt_id == pid):
                self._interrupt = True
            return 200, js, b""
        return 404, "text/plain", b""

    def _post_prompt(self, data: Any) -> Any:
        js = "application/json; charset=utf-8"
        if not isinstance(data, dict):
            v = RECORDED["validation"]["invalid_json_body"]
            return 500, "text/plain; charset=utf-8", v["body"].encode()
        graph = data.get("prompt") or {}
        self._counter += 1
        for nid, node in graph.items():
            if node.get("class_type") not in self.object_info:
                if self.version == "2024":
                    return 500, "text/plain; charset=utf-8", RECORDED["validation"]["invalid_json_body"]["body"].encode()
                body = copy.deepcopy(RECORDED["validation"]["missing_node_class"]["body"])
                body["error"]["message"] = f"Cannot execute because node {node.get('class_type')} does not exist."
                body["error"]["details"] = f"Node ID '#{nid}'"
                return 400, js, json.dumps(body).encode()
        if self.b.missing_models:
            errs = {}
            for nid, node in graph.items():
                if node["class_type"] == "CheckpointLoaderSimple":
                    name = node["inputs"]["ckpt_name"]
                    errs[nid] = {"errors": [{"type": "value_not_in_list", "message": "Value not in list",
                                             "details": f"ckpt_name: '{name}' not in []",
                                             "extra_info": {"input_name": "ckpt_name", "input_config": [[], {}], "received_value": name}}],
                                 "dependent_outputs": [], "class_type": "CheckpointLoaderSimple"}
            body = {"error": {"type": "prompt_outputs_failed_validation", "message": "Prompt outputs failed validation",
                              "details": "", "extra_info": {}}, "node_errors": errs}
            return 400, js, json.dumps(body).encode()
        # The 2024 server ignores a client-chosen prompt_id and always makes its own.
        pid = str(data.get("prompt_id") or uuid.uuid4()) if self.version == "2025" else str(uuid.uuid4())
        job = FakeJob(pid, self._counter, graph, data.get("client_id"))
        self.jobs[pid] = job
        if self.b.run_before_reply:
            job.state = "running"
            return job, pid
        self._pending.put_nowait(job)
        node_errors = copy.deepcopy(RECORDED["validation"]["two_outputs_one_invalid"]["body"]["node_errors"]) \
            if self.b.node_errors_on_200 else {}
        asyncio.get_running_loop().create_task(self._broadcast_status())
        return 200, js, json.dumps({"prompt_id": pid, "number": job.number, "node_errors": node_errors}).encode()

    # ---- websocket -----------------------------------------------------------------

    async def _websocket(self, reader, writer, headers, query) -> None:
        accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
        sid = (query.get("clientId") or ["anon"])[0]
        # Same clientId replaces the old socket; the old one just goes silent (as recorded).
        self.sockets[sid] = [writer]
        self.ws_connects += 1
        self.flags[sid] = False
        await self._send_text(writer, {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": self._remaining()}}, "sid": sid}})
        first = True
        while True:
            frame = await self._read_frame(reader)
            if frame is None:
                break
            opcode, payload = frame
            if opcode == 8:
                try:
                    writer.write(b"\x88\x00")
                    await writer.drain()
                except ConnectionError:
                    pass
                break
            if opcode == 9:
                writer.write(bytes([0x8A, len(payload)]) + payload)
                continue
            if opcode == 1 and first and self.version == "2025":
                msg = json.loads(payload)
                if msg.get("type") == "feature_flags":
                    self.flags[sid] = bool(msg["data"].get("supports_preview_metadata"))
                    await self._send_text(writer, RECORDED["feature_flags_reply"])
            first = False
        if self.sockets.get(sid) == [writer]:
            del self.sockets[sid]

    @staticmethod
    async def _read_frame(reader) -> tuple[int, bytes] | None:
        try:
            b1, b2 = await reader.readexactly(2)
            n = b2 & 0x7F
            if n == 126:
                n = struct.unpack(">H", await reader.readexactly(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", await reader.readexactly(8))[0]
            mask = await reader.readexactly(4) if b2 & 0x80 else b"\0\0\0\0"
            data = bytearray(await reader.readexactly(n))
            for i in range(n):
                data[i] ^= mask[i % 4]
            return b1 & 0x0F, bytes(data)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    @staticmethod
    async def _send_frame(writer, opcode: int, payload: bytes) -> None:
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        try:
            writer.write(head + payload)
            await writer.drain()
        except (ConnectionError, RuntimeError):
            pass

    async def _send_text(self, writer, msg: dict[str, Any]) -> None:
        await self._send_frame(writer, 1, json.dumps(msg).encode())

    async def _to_client(self, job: FakeJob, msg_or_bytes: dict[str, Any] | bytes) -> None:
        if job.prompt_id in self.muted:
            return
        for w in list(self.sockets.get(job.client_id or "", [])):
            if isinstance(msg_or_bytes, bytes):
                await self._send_frame(w, 2, msg_or_bytes)
            else:
                await self._send_text(w, msg_or_bytes)

    def _remaining(self) -> int:
        return sum(1 for j in self.jobs.values() if j.state in ("pending", "running"))

    async def _broadcast_status(self) -> None:
        msg = {"type": "status", "data": {"status": {"exec_info": {"queue_remaining": self._remaining()}}}}
        for ws in list(self.sockets.values()):
            for w in ws:
                await self._send_text(w, msg)

    async def drop_sockets(self) -> None:
        """Cut every websocket (as a flaky network would); HTTP keeps working."""
        for ws in list(self.sockets.values()):
            for w in ws:
                w.transport.abort()
        self.sockets.clear()

    # ---- the worker ------------------------------------------------------------------

    async def _run_jobs(self) -> None:
        while True:
            job = await self._pending.get()
            await self._release.wait()
            if job.prompt_id not in self.jobs:
                continue  # deleted while pending
            job.state = "running"
            self._interrupt = False
            try:
                await self._execute(job)
            finally:
                job.state = "done"
                self.jobs.pop(job.prompt_id, None)

    async def _execute(self, job: FakeJob) -> None:
        pid, now = job.prompt_id, lambda: int(time.time() * 1000)
        messages: list[list[Any]] = []

        async def send(t: str, d: dict[str, Any], *, record: bool = False) -> None:
            if record:
                messages.append([t, d])
            await self._to_client(job, {"type": t, "data": d})

        async def finish(status_str: str, outputs: dict[str, Any]) -> None:
            self.history[pid] = {"prompt": [job.number, pid, job.graph, {"client_id": job.client_id}, []],
                                 "outputs": outputs,
                                 "status": {"status_str": status_str, "completed": status_str == "success", "messages": messages},
                                 "meta": {}}
            await self._broadcast_status()
            if not self.b.skip_final_executing:
                await send("executing", {"node": None, "prompt_id": pid})

        await send("execution_start", {"prompt_id": pid, "timestamp": now()}, record=True)
        await send("execution_cached", {"nodes": [], "prompt_id": pid, "timestamp": now()}, record=True)
        outputs: dict[str, Any] = {}
        size = (32, 32)
        for nid in sorted(job.graph, key=lambda n: int(n) if n.isdigit() else 999):
            node = job.graph[nid]
            cls, inputs = node["class_type"], node.get("inputs", {})
            if self._interrupt:
                await send("execution_interrupted", {"prompt_id": pid, "node_id": nid, "node_type": cls, "executed": [],
                                                     "timestamp": now()}, record=True)
                return await finish("error", outputs)
            if self.version == "2025":
                await send("progress_state", {"prompt_id": pid, "nodes": {nid: {"value": 0.0, "max": 1.0, "state": "running",
                           "node_id": nid, "prompt_id": pid, "display_node_id": nid, "parent_node_id": None, "real_node_id": nid}}})
            await send("executing", {"node": nid, "display_node": nid, "prompt_id": pid})
            if isinstance(inputs.get("width"), int) and isinstance(inputs.get("height"), int):
                size = (min(inputs["width"], 96), min(inputs["height"], 96))
            if cls == "KSampler":
                steps = int(inputs.get("steps", 1))
                step = 0
                while step < steps or self.b.hang:
                    step += 1
                    if self.b.fail == "oom":
                        err = copy.deepcopy(RECORDED["execution_error"])
                        err.update(prompt_id=pid, node_id=nid, node_type=cls, exception_type="torch.OutOfMemoryError",
                                   exception_message="Allocation on device 0 would exceed allowed memory. (out of memory)\n"
                                                     "Currently allocated     : 5.41 GiB\nRequested               : 1.50 GiB",
                                   timestamp=now())
                        await send("execution_error", err, record=True)
                        return await finish("error", outputs)
                    if self.b.step_delay:
                        await asyncio.sleep(self.b.step_delay)
                    if self._interrupt:
                        await send("execution_interrupted", {"prompt_id": pid, "node_id": nid, "node_type": cls,
                                                             "executed": [], "timestamp": now()}, record=True)
                        return await finish("error", outputs)
                    if self.b.die_at_step == step:
                        await self.die()
                        await asyncio.sleep(3600)
                    if self.b.drop_ws_at_step == step:
                        await self.drop_sockets()
                        if self.b.mute_after_drop:
                            self.muted.add(pid)
                    shown = min(step, steps)
                    flags = self.flags.get(job.client_id or "", False)
                    if self.b.previews and flags:
                        meta = dict(RECORDED["type4_metadata"], node_id=nid, prompt_id=pid, display_node_id=nid,
                                    real_node_id=nid, image_type="image/jpeg")
                        mb = json.dumps(meta).encode()
                        await self._to_client(job, struct.pack(">II", 4, len(mb)) + mb + jpeg(pad_to=self.b.preview_bytes))
                    await send("progress", {"value": shown, "max": steps, "prompt_id": pid, "node": nid})
                    if self.b.previews and not flags:
                        await self._to_client(job, struct.pack(">II", 1, 1) + jpeg(pad_to=self.b.preview_bytes))
                    await asyncio.sleep(0)
            if cls in ("SaveImage", "PreviewImage"):
                kind = self.b.out_type if cls == "SaveImage" else "temp"
                ref = {"filename": self.b.filename, "subfolder": self.b.subfolder, "type": kind}
                self.files[(kind, ref["subfolder"], ref["filename"])] = png(*size)
                outputs[nid] = {"images": [ref]}
                await send("executed", {"node": nid, "display_node": nid, "output": {"images": [ref]}, "prompt_id": pid})
        if self.version == "2025":
            await send("execution_success", {"prompt_id": pid, "timestamp": now()}, record=True)
        await finish("success", outputs)
