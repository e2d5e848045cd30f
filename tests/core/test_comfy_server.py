from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from studio_core.comfy_server import (
    LaunchSpec,
    ManagedServer,
    NotAComfyFolder,
    PortInUse,
    ServerExited,
    ServerState,
    build_argv,
    command_spec,
    inspect_folder,
)
from tests.conftest import run_async
from tools import comfy_test_server as cts

# Resolved at import, before the autouse fixture points XDG_CACHE_HOME at a temp folder.
_TEST_CACHE = str(cts.cache_root())


def _fake_comfy(folder: Path, body: str) -> Path:
    (folder / "comfy").mkdir(parents=True)
    (folder / "main.py").write_text(textwrap.dedent(body))
    return folder


def test_not_a_comfy_folder(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(NotAComfyFolder) as e:
        inspect_folder(tmp_path / "photos")
    assert "not a ComfyUI folder" in e.value.user_message and "main.py" in e.value.user_message
    with pytest.raises(NotAComfyFolder) as e:
        inspect_folder(tmp_path / "nowhere")
    assert "does not exist" in e.value.user_message
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotAComfyFolder) as e:
        inspect_folder(tmp_path / "file.txt")
    assert "is a file" in e.value.user_message
    with pytest.raises(NotAComfyFolder):
        inspect_folder("  ")


def test_folder_kinds(tmp_path):
    git = _fake_comfy(tmp_path / "ComfyUI", "print('hi')")
    (git / "venv" / "bin").mkdir(parents=True)
    (git / "venv" / "bin" / "python").write_text("")
    spec = inspect_folder(git)
    assert spec.kind == "git" and spec.argv == (str(git / "venv" / "bin" / "python"), "main.py")
    portable = tmp_path / "ComfyUI_windows_portable"
    (portable / "python_embeded").mkdir(parents=True)
    (portable / "python_embeded" / "python.exe").write_text("")
    (portable / "ComfyUI").mkdir()
    (portable / "ComfyUI" / "main.py").write_text("")
    (portable / "run_nvidia_gpu.bat").write_text("")
    spec = inspect_folder(portable)
    assert spec.kind == "portable" and "--windows-standalone-build" in spec.argv
    argv = build_argv(spec, port=8190, flags=("--preview-method", "auto", "--lowvram"))
    assert argv[-5:] == ["--disable-auto-launch", "--preview-method", "auto", "--lowvram"][-4:] or "--lowvram" in argv
    assert ["--port", "8190"] == argv[argv.index("--port"):argv.index("--port") + 2]
    assert "127.0.0.1" in argv


def test_command_spec_port_placeholder(tmp_path):
    spec = command_spec("python main.py --port {port} --listen 127.0.0.1", cwd=tmp_path)
    assert build_argv(spec, port=9000)[:4] == ["python", "main.py", "--port", "9000"]
    spec = command_spec("python main.py", cwd=tmp_path)
    assert "--port" in build_argv(spec, port=9000)
    with pytest.raises(NotAComfyFolder):
        command_spec("")
    with pytest.raises(NotAComfyFolder):
        command_spec('python "unclosed')


def test_port_already_taken(tmp_path, paths):
    folder = _fake_comfy(tmp_path / "c", "import time; time.sleep(30)")
    server = ManagedServer(inspect_folder(folder, python=sys.executable), log_dir=paths.logs)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(PortInUse) as e:
            run_async(server.start(port))
    assert str(port) in e.value.user_message and "already in use" in e.value.user_message
    assert not server.running


def test_server_that_exits_at_once(tmp_path, paths):
    folder = _fake_comfy(tmp_path / "c", """
        import sys
        print("Traceback (most recent call last):")
        print("ModuleNotFoundError: No module named 'torch'")
        sys.exit(3)
    """)
    server = ManagedServer(inspect_folder(folder, python=sys.executable), log_dir=paths.logs)
    states = []
    server.state_listeners.append(lambda st, msg: states.append(st))
    with pytest.raises(ServerExited) as e:
        run_async(server.start())
    assert "exit code 3" in e.value.user_message
    assert "No module named 'torch'" in e.value.user_message
    assert states[-1] is ServerState.failed
    assert "No module named 'torch'" in (paths.logs / "comfyui.log").read_text()


_FAKE_SERVER = """
    import http.server, json, os, subprocess, sys
    port = int(sys.argv[sys.argv.index("--port") + 1])
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"])
    open(os.path.join(os.path.dirname(__file__), "child.pid"), "w").write(str(child.pid))
    print("fake comfy on", port, "args", sys.argv[1:], flush=True)
    class H(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"system": {}, "devices": [{"type": "cpu", "name": "cpu"}]}).encode()
            self.send_response(200); self.end_headers(); self.wfile.write(body)
        def log_message(self, *a):
            pass
    srv = http.server.HTTPServer(("127.0.0.1", port), H)
    if os.environ.get("CRASH_AFTER"):
        import threading; threading.Timer(float(os.environ["CRASH_AFTER"]), lambda: os._exit(9)).start()
    srv.serve_forever()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(os.name == "nt", reason="POSIX process groups")
def test_stop_kills_children_and_restarts_after_crash(tmp_path, paths):
    folder = _fake_comfy(tmp_path / "c", _FAKE_SERVER)
    lines: list[str] = []

    async def scenario():
        server = ManagedServer(inspect_folder(folder, python=sys.executable), log_dir=paths.logs,
                               flags=("--preview-method", "auto"), max_restarts=1,
                               env={**os.environ, "CRASH_AFTER": "1.0"})
        server.log_listeners.append(lines.append)
        url = await server.start()
        first_pid = server.pid
        async with httpx.AsyncClient() as c:
            assert (await c.get(url + "/system_stats")).status_code == 200
        # It crashes after 1 s and is restarted once on the same port, then crashes for good.
        for _ in range(200):
            if server.state is ServerState.failed:
                break
            await asyncio.sleep(0.05)
        assert server.state is ServerState.failed and server.restarts == 1, server.message
        assert "not restarted again" in server.message
        assert server.pid != first_pid
        server.env = dict(os.environ)  # healthy from now on
        await server.start()
        child = int((folder / "child.pid").read_text())
        assert _alive(child)
        await server.stop()
        return child

    child = run_async(scenario())
    assert not _alive(child)
    assert any("--preview-method" in ln for ln in lines)
    assert "fake comfy on" in (paths.logs / "comfyui.log").read_text()


@pytest.mark.comfy_server
def test_real_comfyui_start_log_stop(paths, monkeypatch):
    monkeypatch.setenv("STUDIO_TEST_CACHE", _TEST_CACHE)
    folder = cts.install()
    lines: list[str] = []

    async def scenario():
        server = ManagedServer(inspect_folder(folder, python=cts.venv_python()), log_dir=paths.logs,
                               flags=("--cpu", "--preview-method", "auto"))
        server.log_listeners.append(lines.append)
        try:
            url = await server.start()
            async with httpx.AsyncClient() as c:
                stats = (await c.get(url + "/system_stats")).json()
            pid = server.pid
        finally:
            await server.stop()
        return stats, pid, server

    stats, pid, server = run_async(scenario(), timeout=180)
    assert stats["devices"][0]["type"] == "cpu"
    assert any("--preview-method auto" in ln for ln in lines if ln.startswith("[studio]"))
    assert server.state is ServerState.stopped and not _alive(pid)
    assert any("Starting server" in ln or "To see the GUI" in ln for ln in lines), lines[-10:]
    assert (paths.logs / "comfyui.log").stat().st_size > 0


def test_launch_spec_is_plain_data():
    spec = LaunchSpec(("python", "main.py"), Path("."), "git")
    assert build_argv(spec, port=1)[-1] == "--disable-auto-launch"


@pytest.mark.skipif(os.name == "nt", reason="POSIX process groups")
def test_core_owns_the_managed_server(tmp_path, paths):
    """StudioCore.comfy_server: flags from the profile, the URL saved, stopped by core.aclose()."""
    from studio_core.app_core import StudioCore

    folder = _fake_comfy(tmp_path / "c", _FAKE_SERVER)
    (folder / "venv" / "bin").mkdir(parents=True)
    (folder / "venv" / "bin" / "python").symlink_to(sys.executable)

    typed = "http://127.0.0.1:8188"

    async def scenario():
        core = await StudioCore.open(paths)
        core.settings.update(comfy_url=typed, comfy_server_folder=str(folder), comfy_manage_server=True)
        server = core.comfy_server
        assert core.comfy_server is server
        url = await server.start()
        # The managed server is used while it runs, but the user's address is never overwritten,
        # neither in memory nor in what a later save writes.
        assert core.settings.current.comfy_active_url == url != typed
        assert core.settings.current.comfy_url == typed
        core.settings.update(width=768)  # any later save
        await core.settings.flush()
        on_disk = json.loads(core.settings.path.read_text())
        assert on_disk["comfy_url"] == typed and "comfy_managed_url" not in on_disk
        assert str(server.port) not in core.settings.path.read_text()
        child = int((folder / "child.pid").read_text())
        pid = server.pid
        await server.stop()
        assert core.settings.current.comfy_active_url == typed  # back to the user's address
        await core.aclose()
        return server, child, pid

    server, child, pid = run_async(scenario())
    assert "--preview-method" in server.argv
    assert "--cpu" in server.argv and "--lowvram" not in server.argv  # no NVIDIA driver here
    assert server.state is ServerState.stopped
    assert not _alive(child) and not _alive(pid)


def test_no_job_object_off_windows():
    from studio_core.comfy_server import _windows_job

    if os.name != "nt":
        assert _windows_job(None) is None  # type: ignore[arg-type]


@pytest.mark.comfy_server
def test_real_comfyui_from_a_start_command_through_core(paths, monkeypatch):
    """The user's own command; the app adds --listen/--port and, with no NVIDIA driver, --cpu."""
    from studio_core.app_core import StudioCore

    monkeypatch.setenv("STUDIO_TEST_CACHE", _TEST_CACHE)
    folder = cts.install()

    async def scenario():
        core = await StudioCore.open(paths)
        core.settings.update(comfy_server_folder=str(folder), comfy_start_command=f'"{cts.venv_python()}" main.py')
        server = core.comfy_server
        url = await server.start()
        async with httpx.AsyncClient() as c:
            stats = (await c.get(url + "/system_stats")).json()
        pid = server.pid
        await core.aclose()
        return server, stats, pid, url

    server, stats, pid, url = run_async(scenario(), timeout=180)
    assert server.argv[:2] == (str(cts.venv_python()), "main.py") and "--cpu" in server.argv
    assert stats["devices"][0]["type"] == "cpu"
    assert server.state is ServerState.stopped and not _alive(pid)
