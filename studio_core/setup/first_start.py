"""After the install: make it the managed server, start it, and prove it with one tiny image.

The test graph is EmptyImage → SaveImage: it needs no model, so it proves the server, its
Python environment and its output folder work even before a model has loaded. The image
is fetched through ``/view`` for the wizard to show, then deleted from ComfyUI's output.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from pathlib import Path

import httpx

from studio_core.setup.errors import SetupError

TEST_PREFIX = "studio_setup_test"


class SmokeImageFailed(SetupError):
    user_message = "ComfyUI started, but the test image was not made."


def register(settings, folder: str | Path) -> None:
    """Make ``folder`` the managed server; the address the user typed (comfy_url) is left alone."""
    settings.update(comfy_server_folder=str(folder), comfy_start_command="", comfy_manage_server=True)


def smoke_graph(size: int = 64) -> dict:
    return {
        "1": {"class_type": "EmptyImage",
              "inputs": {"width": size, "height": size, "batch_size": 1, "color": random.randrange(1 << 24)}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": TEST_PREFIX}},
    }


async def smoke_image(url: str, folder: str | Path, *, timeout: float = 120.0) -> bytes:
    """Run the test graph on the server at ``url``; returns the PNG bytes and deletes the file."""
    folder = Path(folder)
    async with httpx.AsyncClient(base_url=url, timeout=30.0) as client:
        try:
            r = await client.post("/prompt", json={"prompt": smoke_graph(), "client_id": uuid.uuid4().hex})
            if r.status_code != 200:
                raise SmokeImageFailed(r.text[:500], user_message=(
                    f"ComfyUI refused the test graph (HTTP {r.status_code}): {r.text[:300]}"))
            prompt_id = r.json()["prompt_id"]
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                h = (await client.get(f"/history/{prompt_id}")).json().get(prompt_id)
                if h and h.get("outputs"):
                    break
                if h and (h.get("status") or {}).get("status_str") == "error":
                    raise SmokeImageFailed(str(h["status"]), user_message="ComfyUI reported an error while "
                                                                             "making the test image.")
                if loop.time() > deadline:
                    raise SmokeImageFailed("timeout", user_message=(
                        f"ComfyUI did not finish the test image within {timeout:.0f} s."))
                await asyncio.sleep(0.25)
            info = h["outputs"]["2"]["images"][0]
            img = await client.get("/view", params={"filename": info["filename"], "subfolder": info.get("subfolder", ""),
                                                    "type": info.get("type", "output")})
            img.raise_for_status()
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            raise SmokeImageFailed(repr(exc), user_message=(
                f"ComfyUI started, but the test image could not be made or fetched ({type(exc).__name__}).")) from None
    out = folder / "output" / info.get("subfolder", "") / info["filename"]
    await asyncio.to_thread(out.unlink, missing_ok=True)
    return img.content
