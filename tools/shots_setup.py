"""Screenshots of the “Set up local generation” wizard, each step, against the loopback
mirror from the tests (a release-style zip of the CPU test server's ComfyUI, a random-weight
model): the plan with the shipped catalog on a simulated Windows computer with a 6 GB NVIDIA card
(the pinned portable build) and on a Linux one (the git commit), the plan ready to install (no GPU), progress mid-download, a wrong checksum, and the finished setup with
its test image (a real venv, the real server started; about a minute).

    .venv/bin/python tools/shots_setup.py [--out screenshots]
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from shots_common import save as _save, wait_until  # noqa: E402  (after the path set-up above)


async def _until(cond, timeout: float = 30.0) -> None:
    await wait_until(cond, timeout=timeout, settle=0.15)


async def shoot(out: Path) -> list[Path]:
    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_core.setup.catalog import Catalog
    from studio_core.setup.gpu_facts import GpuFacts
    from studio_core.setup.pyenv import PythonEnv
    from studio_gui.setup_wizard import SetupWizard
    from studio_gui.tasks import TaskOwner
    from tests.setup_mirror import TOOL, SetupMirror, catalog_dict, comfy_archive, fake_safetensors, server_site_packages

    home = Path(tempfile.mkdtemp(prefix="studio-shots-setup-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    tasks = TaskOwner()
    shots: list[Path] = []
    archive = comfy_archive().read_bytes()
    try:
        six_gb = GpuFacts("NVIDIA GeForce RTX 3050", 6144, "552.22", (12, 4))
        for platform, card, name in (("win32", six_gb, "setup-1-plan-windows-nvidia-6gb.png"),
                                     ("win32", None, "setup-1-plan-windows-no-nvidia.png"),
                                     ("linux", six_gb, "setup-1-plan-linux.png")):
            dlg = SetupWizard(core, tasks=tasks, gpu_reader=lambda card=card: card, folder=home / "ComfyUI",
                              platform=platform, git_finder=lambda: "git")
            dlg.show()
            await _until(lambda: dlg.components.topLevelItemCount() > 0)
            shots.append(_save(dlg, out / name))
            dlg.close()
        with SetupMirror() as mirror:
            cat = Catalog.from_dict(catalog_dict(mirror, archive=archive, model=fake_safetensors(3_000_000),
                                                 pose=fake_safetensors(100_000)))
            env = PythonEnv(python=[TOOL.find_python311()], base_site_packages=server_site_packages())
            mirror.hold_after["/models/tiny.safetensors"] = 1_200_000
            dlg = SetupWizard(core, tasks=tasks, catalog=cat, env=env, gpu_reader=lambda: None, folder=home / "ComfyUI")
            dlg.show()
            await _until(dlg.install_button.isEnabled)
            shots.append(_save(dlg, out / "setup-2-plan-ready.png"))
            dlg.install_button.click()
            await _until(lambda: dlg.file_label.text() == "tiny.safetensors" and dlg.file_bar.value() > 0)
            await asyncio.sleep(1.5)  # let the speed and time left settle on the held download
            shots.append(_save(dlg, out / "setup-3-progress.png"))
            mirror.release.set()
            await _until(lambda: dlg.pages.currentIndex() == 2, timeout=400)
            shots.append(_save(dlg, out / "setup-5-done.png"))
            dlg.close()
            await core.comfy_server.stop()
        with SetupMirror() as mirror:
            cat = Catalog.from_dict(catalog_dict(mirror, archive=archive, model=fake_safetensors(), model_sha="f" * 64,
                                                 pose=fake_safetensors(10_000)))
            dlg = SetupWizard(core, tasks=tasks, catalog=cat, gpu_reader=lambda: None, folder=home / "Other")
            dlg.show()
            await _until(dlg.install_button.isEnabled)
            dlg.install_button.click()
            await _until(lambda: dlg.pages.currentIndex() == 2)
            shots.append(_save(dlg, out / "setup-4-wrong-sum.png"))
            dlg.close()
    finally:
        await tasks.cancel_all()
        await core.aclose()
    return shots


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
