"""After the install: make it the managed server, start it, and prove it with one tiny image.

The proof samples with the model the setup installed (64×64, one step) when the server
lists it, so it shows the model loads, not only that the server runs. Only when no model
can sample (none installed, not listed, or it fails to load) is the graph EmptyImage →
SaveImage, which still proves the server, its Python environment and its output folder.
The image is fetched through ``/view`` for the wizard to show, then deleted from the
install's ``output/`` folder: the name comes from the server, so it is resolved and must
stay inside that folder before anything is removed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx

from studio_core.setup.errors import SetupError

log = logging.getLogger(__name__)

TEST_PREFIX = "studio_setup_test"
SIZE = 64
CHECKPOINTS = "models/checkpoints"


class SmokeImageFailed(SetupError):
    user_message = "ComfyUI started, but the test image was not made."


@dataclass(frozen=True, slots=True)
class SmokeResult:
    png: bytes
    checkpoint: str | None  # the model that drew it; None: the plain EmptyImage proof
    note: str = ""  # why the model was not used, or why the file was not deleted


def register(settings, folder: str | Path) -> None:
    """Make ``folder`` the managed server; the address the user typed (comfy_url) is left alone."""
    settings.update(comfy_server_folder=str(folder), comfy_start_command="", comfy_manage_server=True)


def installed_checkpoint(folder: str | Path, catalog) -> str | None:
    """The checkpoint name (as ComfyUI lists it) of the model this setup installed; None if none. Blocking."""
    from studio_core.setup.installer import read_manifest

    manifest = read_manifest(folder)
    model = catalog.model(str(manifest.get("model"))) if manifest else None
    if model is None:
        return None
    dest = PurePosixPath(model.file.dest)
    root = Path(folder) / str(manifest.get("comfy_dir") or "")  # type: ignore[union-attr]
    if not dest.is_relative_to(CHECKPOINTS) or not (root / model.file.dest).exists():
        return None
    return dest.relative_to(CHECKPOINTS).as_posix()


def empty_image_graph(size: int = SIZE) -> dict:
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": size, "height": size, "batch_size": 1, "color": random.randrange(1 << 24)}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": TEST_PREFIX}},
    }


def model_graph(checkpoint: str, size: int = SIZE) -> dict:
    """txt2img at ``size``² with one step: enough to load and run every part of the model."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a small red potion, game sprite"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": size, "height": size, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "positive": ["2", 0], "negative": ["3", 0],
                                                  "latent_image": ["4", 0], "seed": random.randrange(1 << 31),
                                                  "steps": 1, "cfg": 1.0, "sampler_name": "euler",
                                                  "scheduler": "normal", "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": TEST_PREFIX}},
    }


def _combo(spec) -> list[str]:
    """The choices of a combo input in either object_info form ([[..], {}] or ["COMBO", {"options": [..]}])."""
    if isinstance(spec, list) and spec:
        if isinstance(spec[0], list):
            return [str(v) for v in spec[0]]
        if spec[0] == "COMBO" and len(spec) > 1 and isinstance(spec[1], dict):
            return [str(v) for v in spec[1].get("options") or ()]
    return []


async def listed_checkpoints(client: httpx.AsyncClient) -> list[str]:
    r = await client.get("/object_info/CheckpointLoaderSimple")
    if r.status_code == 404:  # servers that only answer the whole list
        r = await client.get("/object_info")
    r.raise_for_status()
    node = r.json().get("CheckpointLoaderSimple") or {}
    return [n.replace("\\", "/") for n in _combo(((node.get("input") or {}).get("required") or {}).get("ckpt_name"))]


async def _run(client: httpx.AsyncClient, graph: dict, timeout: float) -> dict:
    """Queue ``graph`` and return the image reference SaveImage wrote; SmokeImageFailed on any error."""
    r = await client.post("/prompt", json={"prompt": graph, "client_id": uuid.uuid4().hex})
    if r.status_code != 200:
        raise SmokeImageFailed(r.text[:500], user_message=(
            f"ComfyUI refused the test graph (HTTP {r.status_code}): {r.text[:300]}"))
    prompt_id = r.json()["prompt_id"]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        h = (await client.get(f"/history/{prompt_id}")).json().get(prompt_id)
        status = (h or {}).get("status") or {}
        if status.get("status_str") == "error":
            msg = next((m[1].get("exception_message", "") for m in status.get("messages") or ()
                        if isinstance(m, list) and len(m) > 1 and m[0] == "execution_error"), "")
            raise SmokeImageFailed(str(status)[:500], user_message=(
                "ComfyUI reported an error while making the test image" + (f": {msg.strip()[:300]}" if msg else ".")))
        if h and h.get("outputs"):
            save = next(k for k, v in graph.items() if v["class_type"] == "SaveImage")
            return h["outputs"][save]["images"][0]
        if loop.time() > deadline:
            raise SmokeImageFailed("timeout", user_message=f"ComfyUI did not finish the test image within {timeout:.0f} s.")
        await asyncio.sleep(0.25)


def output_file(folder: Path, ref: dict) -> Path | None:
    """Where the server says it wrote ``ref``, if that is inside ``folder/output``; None otherwise."""
    if ref.get("type", "output") != "output":
        return None
    root = (folder / "output").resolve()
    try:
        path = (root / str(ref.get("subfolder") or "") / str(ref["filename"])).resolve()
    except (OSError, ValueError, KeyError):
        return None
    return path if path.is_relative_to(root) and path != root and path.name.startswith(TEST_PREFIX) else None


def _delete(path: Path) -> None:
    path.unlink(missing_ok=True)


async def smoke_image(url: str, folder: str | Path, *, checkpoint: str | None = None,
                      timeout: float = 300.0) -> SmokeResult:
    """Make the test image on the server at ``url`` (with ``checkpoint`` when it samples), then delete the file.

    ``folder`` is the install folder; the output folder is found in ComfyUI's own folder inside it.
    """
    from studio_core.setup.installer import comfy_root

    folder = await asyncio.to_thread(comfy_root, folder)
    note = ""
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        try:
            used = None
            if checkpoint:
                listed = await listed_checkpoints(client)
                if checkpoint in listed:
                    try:
                        ref = await _run(client, model_graph(checkpoint), timeout)
                        used = checkpoint
                    except SmokeImageFailed as exc:
                        note = f"{checkpoint} could not make an image ({exc.user_message}); the plain test was used."
                        log.warning("setup test with %s failed: %s", checkpoint, exc)
                else:
                    note = f"ComfyUI does not list {checkpoint}, so the plain test was used."
            if used is None:
                ref = await _run(client, empty_image_graph(), timeout)
            img = await client.get("/view", params={"filename": ref["filename"], "subfolder": ref.get("subfolder", ""),
                                                    "type": ref.get("type", "output")})
            img.raise_for_status()
        except (httpx.HTTPError, ValueError, KeyError, StopIteration, TypeError) as exc:
            raise SmokeImageFailed(repr(exc), user_message=(
                f"ComfyUI started, but the test image could not be made or fetched ({type(exc).__name__}).")) from None
    target = output_file(folder, ref)
    if target is None:
        log.warning("setup test image reference %r is not a file in %s; not deleted", ref, folder / "output")
        note = (note + " " if note else "") + ("The server named the test image outside its output folder, so "
                                               "the app deleted nothing.")
    else:
        await asyncio.to_thread(_delete, target)
    return SmokeResult(img.content, used, note)
