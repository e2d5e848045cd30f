"""Fake ComfyUI servers (tests/comfy_fake_server.py) with a chosen checkpoint list and the
``/view_metadata/<folder>`` route ComfyUI serves (server.py: the file's safetensors
``__metadata__`` as JSON, 404 when the file has none), for the model family and
"which server has this model" tests, core and GUI alike."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.comfy_fake_server import DATA, FakeComfyServer


def info_with(checkpoints: list[str], unets: list[str] | None = None) -> dict:
    info = copy.deepcopy(json.loads((DATA / "comfy_object_info_0.3.64.json").read_text()))
    info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = [list(checkpoints), {}]
    if unets is not None:
        info["UNETLoader"]["input"]["required"]["unet_name"] = [list(unets), {}]
    return info


class ModelServer(FakeComfyServer):
    """``metadata``: {(folder, file): __metadata__}; every other file has none (404)."""

    def __init__(self, checkpoints: list[str], *, metadata: dict[tuple[str, str], dict] | None = None,
                 unets: list[str] | None = None, **kw: Any):
        super().__init__(object_info=info_with(checkpoints, unets), **kw)
        self.metadata = dict(metadata or {})
        self.metadata_asked: list[tuple[str, str]] = []

    def set_checkpoints(self, checkpoints: list[str]) -> None:
        self.object_info = info_with(checkpoints)

    async def _route(self, method, path, query, body):
        if method == "GET" and path.startswith("/view_metadata/"):
            folder = path.split("/", 2)[2]
            name = query.get("filename", [""])[0]
            self.metadata_asked.append((folder, name))
            found = self.metadata.get((folder, name))
            if found is None:
                return 404, "text/plain", b"404: Not Found"
            return 200, "application/json", json.dumps(found).encode()
        return await super()._route(method, path, query, body)
