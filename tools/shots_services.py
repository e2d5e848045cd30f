"""Screenshots of the service selector and a provider settings page (issue 6, item 9).

    QT_QPA_PLATFORM=offscreen python tools/shots_services.py [--out screenshots]

Runs on a throw-away data folder with stand-in providers (no network, no real keys, no
system keyring), so the pictures show each state on purpose: ready, needs a key,
unreachable, error, not installed, and a connection test that fails and then passes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from shots_common import run_shots, save, shot_core, shot_window

from studio_core.errors import DependencyMissing  # noqa: E402
from studio_core.models import ModelInfo, ProviderStatus, ServiceState  # noqa: E402


class StandIn:
    """Answers ``check()`` with a scripted status, like a loopback server would."""

    def __init__(self, sid: str, status: ProviderStatus):
        self.id = sid
        self.display_name = sid
        self.status = status

    async def check(self) -> ProviderStatus:
        await asyncio.sleep(0.05)
        return self.status

    async def list_models(self):
        return (ModelInfo("stand-in"),)

    async def generate(self, request, *, job_id):  # pragma: no cover - not used for pictures
        raise NotImplementedError
        yield

    async def cancel(self, job_id: str) -> None:
        pass

    async def aclose(self) -> None:
        pass


STATUSES: dict[str, ProviderStatus | BaseException] = {
    "comfyui": ProviderStatus(ServiceState.ready, "ComfyUI 0.3.64 at 127.0.0.1:8188"),
    "huggingface": ProviderStatus(ServiceState.ready, "Token accepted."),
    "replicate": ProviderStatus(ServiceState.needs_key, "Replicate needs an API token. Add one in Settings."),
    "bedrock": ProviderStatus(ServiceState.unreachable, "Can't reach Bedrock in us-east-1."),
    "azure": DependencyMissing("openai"),
    "google": ProviderStatus(ServiceState.error, "Google rejected the key (403). Check it in Settings."),
    "openai": ProviderStatus(ServiceState.ready, "Key accepted."),
}


async def shoot(out: Path) -> list[Path]:
    async with shot_core() as core:
        return await _shoot(core, out)


async def _shoot(core, out: Path) -> list[Path]:
    from studio_gui.settings_dialog import SettingsDialog

    stand_ins = {sid: StandIn(sid, st) for sid, st in STATUSES.items() if isinstance(st, ProviderStatus)}

    def provider(sid: str):
        st = STATUSES[sid]
        if isinstance(st, BaseException):
            raise st
        return stand_ins[sid]

    core.services.provider = provider  # type: ignore[method-assign]
    # The pages' "not in this build" banner follows the stand-ins, not which modules exist today.
    from studio_gui.services import provider_pages

    real_problem = provider_pages.module_problem
    provider_pages.module_problem = lambda info: real_problem(info) if info.id == "azure" else ""
    core.settings.update(selected_service="huggingface", fallback_services=("openai", "comfyui"))
    shots: list[Path] = []
    async with shot_window(core, 1280, 800) as window:
        await _settle(window)
        shots.append(save(window.services, out / "services-selector.png"))
        shots.append(save(window, out / "services-main-window.png"))

        dlg = SettingsDialog(core, tasks=window.tasks, parent=window, page="Services", provider="openai")
        dlg.resize(820, 600)
        dlg.show()
        await _settle(window)
        page = dlg.tabs.currentWidget().page("openai")
        page.key_edit.setText("  sk-proj-EXAMPLEexample0000demo4242  ")
        stand_ins["openai"].status = ProviderStatus(
            ServiceState.error, "OpenAI rejected the key or credentials (401). Check them in Settings.")
        await page.test_connection()
        await _settle(window)
        shots.append(save(dlg, out / "provider-openai-test-failed.png"))
        stand_ins["openai"].status = ProviderStatus(
            ServiceState.ready, "Key accepted; gpt-image-1.5 is available to this account.")
        await page.test_connection()
        await _settle(window)
        shots.append(save(dlg, out / "provider-openai-test-passed.png"))

        dlg.tabs.currentWidget().show_provider("azure")
        azure = dlg.tabs.currentWidget().page("azure")
        azure.inputs["endpoint"].setText("my-resource.openai.azure")
        azure.inputs["api_version"].setText("yesterday")
        await azure.save()
        await _settle(window)
        shots.append(save(dlg, out / "provider-azure-validation.png"))

        dlg.tabs.setCurrentIndex([dlg.tabs.tabText(i) for i in range(dlg.tabs.count())].index("Fallback"))
        await _settle(window)
        shots.append(save(dlg, out / "settings-fallback.png"))
        dlg.close()
    return shots


async def _settle(window) -> None:
    for _ in range(750):  # cloud SDK imports on first check can take seconds on a cold disk
        await asyncio.sleep(0.02)
        if window.tasks.running == 0:
            break
    await asyncio.sleep(0.1)


def main() -> int:
    return run_shots(shoot, __doc__)


if __name__ == "__main__":
    raise SystemExit(main())
