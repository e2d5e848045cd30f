"""Screenshots of the ComfyUI settings panel (gauge low / near the limit / over budget, an
unknown card, a custom workflow) and the health panel, offscreen, into screenshots/. Run: .venv/bin/python tools/shots_hardware.py"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QObject, Signal  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from studio_core.gpu import VramInfo  # noqa: E402
from studio_core.hardware.health import ProgressTracker, health_from  # noqa: E402
from studio_core.hardware.profiles import profile_for_total  # noqa: E402
from studio_core.models import ModelInfo  # noqa: E402

OUT = ROOT / "screenshots"
MODELS = (ModelInfo("sd_xl_base_1.0.safetensors"), ModelInfo("v1-5-pruned-emaonly.safetensors"),
          ModelInfo("flux1-schnell-fp8.safetensors"), ModelInfo("ponyDiffusionV6XL.safetensors"))


class FakeMonitor(QObject):
    """What HardwareMonitor offers widgets, with fixed readings."""

    updated = Signal()

    def __init__(self, total_mib: float, used_mib: float, *, name="NVIDIA GeForce RTX 3050", util=35, temp=58):
        super().__init__()
        self.gpu = VramInfo(name, "560.94", total_mib, used_mib, total_mib - used_mib, util, temp)
        self.profile = profile_for_total(int(total_mib))
        self.profile_is_guess = False
        self.url = "http://127.0.0.1:8188"
        stats = {"system": {"comfyui_version": "0.3.64"},
                 "devices": [{"name": f"cuda:0 {name} : cudaMallocAsync", "type": "cuda", "index": 0,
                              "vram_total": total_mib * 2**20, "vram_free": (total_mib - used_mib) * 2**20}]}
        self.health = health_from(self.url, stats, {"queue_running": [1], "queue_pending": [1, 2]})

    def note(self) -> str:
        return ""


class UnknownCardMonitor(FakeMonitor):
    """No NVIDIA driver here and no GPU from the server: the budget is the assumed profile's."""

    def __init__(self):
        super().__init__(6144, 0)
        from studio_core.hardware.profiles import DEFAULT_PROFILE

        self.gpu, self.health, self.profile, self.profile_is_guess = None, None, DEFAULT_PROFILE, True

    def note(self) -> str:
        return "No NVIDIA driver found on this computer, so VRAM can't be read and the server is not answering."


async def main() -> None:
    from studio_core.app_core import StudioCore
    from studio_core.paths import AppPaths
    from studio_gui.comfy_settings.health_panel import ActiveJobs, HealthPanel
    from studio_gui.comfy_settings.panel import ComfySettingsPanel
    from studio_gui.tasks import TaskOwner

    OUT.mkdir(exist_ok=True)
    core = await StudioCore.open(AppPaths.portable(Path(tempfile.mkdtemp())))
    tasks = TaskOwner()
    shots = (
        ("low", 6144, 900, "v1-5-pruned-emaonly.safetensors", 512, 512, 1, False),
        ("near", 8192, 1200, "sd_xl_base_1.0.safetensors", 1024, 1024, 1, False),
        ("over", 6144, 1100, "flux1-schnell-fp8.safetensors", 1024, 1024, 2, False),
    )
    try:
        for tag, total, used, model, w, h, batch, tiled in shots:
            mon = FakeMonitor(total, used, name="NVIDIA GeForce RTX 3050" if total == 6144 else "NVIDIA GeForce RTX 4060")
            panel = ComfySettingsPanel(core, tasks=tasks, monitor=mon)
            panel.models.set_models(MODELS, wanted=model)
            panel.width_edit.setText(str(w))
            panel.height_edit.setText(str(h))
            panel.batch.setValue(batch)
            panel.tiled.setChecked(tiled)
            panel._on_size_typed()
            panel.resize(760, panel.sizeHint().height() + 20)
            panel.show()
            await asyncio.sleep(0.05)
            a = panel.fit.assessment
            print(f"{tag}: peak {a.peak_mib:.0f} MiB / budget {a.budget_mib:.0f} -> {a.level}, "
                  f"{[p.kind.value for p in a.proposals]}")
            panel.grab().save(str(OUT / f"hardware_panel_{tag}.png"))
            panel.close()
        # Unknown card: the estimate against the assumed 6 GB profile, in a neutral colour.
        panel = ComfySettingsPanel(core, tasks=tasks, monitor=UnknownCardMonitor())
        panel.models.set_models(MODELS, wanted="sd_xl_base_1.0.safetensors")
        panel._on_size_typed()
        panel.resize(760, panel.sizeHint().height() + 20)
        panel.show()
        await asyncio.sleep(0.05)
        print("unknown:", panel.fit.verdict.text())
        panel.grab().save(str(OUT / "hardware_panel_unknown_card.png"))
        panel.close()

        # A custom workflow: model/sampler greyed, the built-in-only fixes greyed.
        flow = Path(tempfile.mkdtemp()) / "my_sdxl_flow.json"
        flow.write_text((ROOT / "tests" / "data" / "comfy_workflow_api_sdxl.json").read_text(encoding="utf-8"),
                        encoding="utf-8")
        panel = ComfySettingsPanel(core, tasks=tasks, monitor=FakeMonitor(6144, 900))
        panel.models.set_models(MODELS, wanted="sd_xl_base_1.0.safetensors")
        panel.width_edit.setText("1536")
        panel.height_edit.setText("1536")
        panel.batch.setValue(2)
        panel._on_size_typed()
        await panel.workflow_picker.load(str(flow))
        panel.resize(760, panel.sizeHint().height() + 20)
        panel.show()
        await asyncio.sleep(0.05)
        print("custom:", sorted(panel.request_fields()["options"]))
        panel.grab().save(str(OUT / "hardware_panel_custom_workflow.png"))
        panel.fit.menu.popup(panel.fit.fix_button.mapToGlobal(panel.fit.fix_button.rect().bottomLeft()))
        await asyncio.sleep(0.05)
        panel.fit.menu.grab().save(str(OUT / "hardware_panel_custom_workflow_menu.png"))
        panel.fit.menu.close()
        panel.close()
        core.settings.update(comfy_workflow_file="")
        core.settings.update_provider("comfyui", workflow_file="")

        # A bad custom size and a negative seed, shown in place.
        panel = ComfySettingsPanel(core, tasks=tasks, monitor=FakeMonitor(6144, 900))
        panel.models.set_models(MODELS)
        panel.width_edit.setText("7")
        panel.height_edit.setText("100000")
        panel.random_seed.setChecked(False)
        panel.seed_edit.setText("-5")
        panel._on_size_typed()
        panel.resize(760, panel.sizeHint().height() + 20)
        panel.show()
        await asyncio.sleep(0.05)
        panel.grab().save(str(OUT / "hardware_panel_bad_input.png"))
        panel.close()

        mon = FakeMonitor(6144, 4710, util=97, temp=71)
        active = ActiveJobs(core)
        t = [0.0]
        active.tracker = ProgressTracker("job-1", clock=lambda: t[0])
        for step in range(0, 24):
            t[0] = 2.0 + step * 7.7
            active.tracker.update(step, 35)
        hp = HealthPanel(core, tasks=tasks, monitor=mon, active=active)
        hp.refresh()
        hp.resize(520, hp.sizeHint().height())
        hp.show()
        await asyncio.sleep(0.05)
        hp.grab().save(str(OUT / "hardware_health_panel.png"))
        print("seed shape:", mon.health.to_seed_dict(), active.snapshot.to_seed_dict())
    finally:
        await tasks.cancel_all()
        await core.aclose()


if __name__ == "__main__":
    import qasync

    app = QApplication.instance() or QApplication(sys.argv)
    app.setStyle("Fusion")
    app.setQuitOnLastWindowClosed(False)  # panels close between shots while files are read off-thread
    asyncio.run(main(), loop_factory=qasync.QEventLoop)
    print("saved to", OUT)
