"""A whole local setup from the loopback mirror, then the installed ComfyUI really starts.

The mirror serves a release-style zip of the CPU test server's ComfyUI and a random-weight
.safetensors. The Python step really runs ``python -m venv`` and ``pip install torch==2.14.1
torchvision==0.29.1 --index-url file:///opt/pypi-more/simple`` and ComfyUI's requirements;
through the documented test-only hook (PythonEnv.base_site_packages) the new venv sees the
test server's site-packages, so pip finds everything satisfied instead of unpacking 5 GB of
torch on every run.
"""

from __future__ import annotations

import shutil

import httpx
import pytest

from studio_core.comfy_server import ManagedServer, inspect_folder
from studio_core.setup import first_start, installer as inst
from studio_core.setup.catalog import Catalog
from studio_core.setup.plan import make_plan
from studio_core.setup.pyenv import PythonEnv, venv_python
from tests.conftest import run_async
from tests.setup_mirror import TOOL, SetupMirror, catalog_dict, comfy_archive, fake_safetensors, server_site_packages

pytestmark = [pytest.mark.comfy_server, pytest.mark.slow]


def test_install_from_the_mirror_starts_and_makes_a_test_image(tmp_path):
    archive = comfy_archive().read_bytes()
    model = fake_safetensors(400_000)
    with SetupMirror() as mirror:
        cat = Catalog.from_dict(catalog_dict(mirror, archive=archive, model=model, pose=fake_safetensors(50_000, 3)))
        folder = tmp_path / "ComfyUI"
        plan = make_plan(None, shutil.disk_usage(tmp_path).free, cat, folder)
        assert plan.can_install, plan.problems
        env = PythonEnv(python=[TOOL.find_python311()], base_site_packages=server_site_packages())
        lines: list[str] = []
        on_event = lambda e: lines.append(e.text) if isinstance(e, inst.LogLine) else None  # noqa: E731
        run_async(inst.Installer(plan, cat, env=env, on_event=on_event).install(), timeout=600)
    assert any("torch==2.14.1 torchvision==0.29.1 --index-url file:///opt/pypi-more/simple" in ln for ln in lines)
    assert any("Requirement already satisfied: torch==2.14.1" in ln for ln in lines), lines[-20:]
    assert venv_python(folder).exists() and inst.read_manifest(folder)["model"] == "tiny"
    assert (folder / "models/checkpoints/tiny.safetensors").read_bytes() == model

    async def start_and_prove():
        spec = inspect_folder(folder)
        assert spec.argv[0] == str(venv_python(folder))  # the installed venv, not the app's Python
        server = ManagedServer(spec, log_dir=tmp_path / "logs", flags=("--cpu",), max_restarts=0)
        try:
            url = await server.start()
            async with httpx.AsyncClient() as client:
                stats = (await client.get(url + "/system_stats")).json()
            checkpoint = first_start.installed_checkpoint(folder, cat)
            result = await first_start.smoke_image(url, folder, checkpoint=checkpoint)
            return stats, result, checkpoint
        finally:
            await server.stop()

    stats, result, checkpoint = run_async(start_and_prove(), timeout=300)
    assert stats["devices"] and "system" in stats
    assert result.png.startswith(b"\x89PNG")
    # The random-weight file is listed but is no checkpoint ComfyUI can load: the plain image proves the server.
    assert checkpoint == "tiny.safetensors" and result.checkpoint is None and "could not make an image" in result.note
    assert not list((folder / "output").glob(first_start.TEST_PREFIX + "*"))  # shown, then deleted
    assert run_async(inst.repair(folder, cat)).fixed == ()
