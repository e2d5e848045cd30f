"""Screenshots of the setup wizard's later screens, against the loopback mirror (a few seconds,
no real ComfyUI): the shipped plan asking for a pasted checksum, a wrong paste, a stalled
download, an install offering the next version, and the result of an update.

    .venv/bin/python tools/shots_setup_care.py [--out screenshots]
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
    from studio_core.setup import installer as inst
    from studio_core.setup.catalog import Catalog
    from studio_core.setup.gpu_facts import GpuFacts
    from studio_core.setup.plan import make_plan
    from studio_gui.setup_wizard import SetupWizard
    from studio_gui.tasks import TaskOwner
    from tests.setup_fakes import FakeEnv, release_zip
    from tests.setup_mirror import SetupMirror, catalog_dict, fake_safetensors

    home = Path(tempfile.mkdtemp(prefix="studio-shots-setup-care-"))
    core = await StudioCore.open(AppPaths.portable(home), use_keyring=False)
    tasks = TaskOwner()
    shots: list[Path] = []
    six_gb = GpuFacts("NVIDIA GeForce RTX 3050", 6144, "552.22", (12, 4))
    try:
        # A Linux machine without git: the shipped catalog's verifiable sources (the Windows
        # portable build, the pinned git commit) don't apply, so the plain source zip needs a pasted sum.
        dlg = SetupWizard(core, tasks=tasks, gpu_reader=lambda: six_gb, folder=home / "ComfyUI",
                          platform="linux", git_finder=lambda: None)
        dlg.show()
        await _until(dlg.sum_box.isVisible)
        shots.append(_save(dlg, out / "setup-care-1-paste-checksum.png"))
        dlg.sum_edit.setText("3f8a 91c0")
        dlg.sum_button.click()
        await asyncio.sleep(0.1)
        shots.append(_save(dlg, out / "setup-care-2-bad-checksum.png"))
        dlg.close()
        env = FakeEnv()
        with SetupMirror() as mirror:
            data = catalog_dict(mirror, archive=release_zip("1"), archive2=release_zip("2"),
                                model=fake_safetensors(3_000_000), pose=fake_safetensors(100_000))
            cat = Catalog.from_dict(data)
            mirror.hold_after["/models/tiny.safetensors"] = 1_200_000
            dlg = SetupWizard(core, tasks=tasks, catalog=cat, env=env, gpu_reader=lambda: None,
                              folder=home / "Stalled")
            dlg.show()
            await _until(dlg.install_button.isEnabled)
            dlg.install_button.click()
            await _until(lambda: "stalled" in dlg.file_detail.text(), timeout=20)
            shots.append(_save(dlg, out / "setup-care-3-stalled.png"))
            dlg.close()
            mirror.release.set()
            folder = home / "ComfyUI"
            only_v1 = Catalog.from_dict({**data, "comfyui": data["comfyui"][:1]})
            await inst.Installer(make_plan(None, 10**12, only_v1, folder), only_v1, env=env).install()
            dlg = SetupWizard(core, tasks=tasks, catalog=cat, env=env, gpu_reader=lambda: None, folder=folder)
            dlg.show()
            await _until(dlg.update_button.isVisible)
            shots.append(_save(dlg, out / "setup-care-4-update-offer.png"))
            dlg.update_button.click()
            await _until(lambda: dlg.pages.currentIndex() == 2, timeout=60)
            shots.append(_save(dlg, out / "setup-care-5-updated.png"))
            dlg.close()
            await core.comfy_server.stop()
    finally:
        await tasks.cancel_all()
        await core.aclose()
    return shots


def main() -> int:
    from shots_common import run_shots

    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
