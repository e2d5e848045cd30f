"""A ComfyUI server the app starts, watches and stops for the user.

The user points at a ComfyUI folder (a git checkout with ``main.py``, or the Windows
portable build with ``python_embeded/`` and ``run_nvidia_gpu.bat``) or gives a start
command. :class:`ManagedServer` starts it on a loopback port with flags from the card's
profile, streams its output to listeners and to ``comfyui.log``, waits for
``/system_stats``, restarts it a bounded number of times if it crashes, and stops it with
all its child processes: a new process group on POSIX, a Job Object with
KILL_ON_JOB_CLOSE on Windows (so the server dies with the app even if the app crashes).

Threads: output is read and written to the log file by one daemon thread per process;
listeners are called on the asyncio loop. ``start``/``stop`` are coroutines; errors are
StudioError subclasses with messages fit to show in place.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

import httpx

from studio_core.errors import StudioError

log = logging.getLogger(__name__)

LOG_NAME = "comfyui.log"


class NotAComfyFolder(StudioError):
    user_message = "That folder is not a ComfyUI folder."


class PortInUse(StudioError):
    user_message = "That port is already in use by another program."


class ServerExited(StudioError):
    user_message = "ComfyUI stopped right after starting."


class ServerStartTimeout(StudioError):
    user_message = "ComfyUI did not answer in time after starting."


class ServerState(enum.StrEnum):
    stopped = "stopped"
    starting = "starting"
    running = "running"
    restarting = "restarting"
    failed = "failed"


@dataclass(frozen=True, slots=True)
class LaunchSpec:
    """What to run: ``argv`` before the app's own flags, in ``cwd``."""

    argv: tuple[str, ...]
    cwd: Path
    kind: str  # "git" | "portable" | "command"
    port_placeholder: bool = False  # a command with {port}: the app adds no --port/--listen


def _venv_python(folder: Path) -> Path | None:
    for venv in ("venv", ".venv", "env"):
        for rel in ("bin/python", "Scripts/python.exe"):
            p = folder / venv / rel
            if p.exists():
                return p
    return None


def inspect_folder(folder: str | Path, *, python: str | Path | None = None) -> LaunchSpec:
    """How to start the ComfyUI in ``folder``; raises NotAComfyFolder saying what is missing."""
    raw = str(folder).strip()
    if not raw:
        raise NotAComfyFolder("empty folder", user_message="Choose the ComfyUI folder first.")
    path = Path(raw).expanduser()
    if not path.exists():
        raise NotAComfyFolder(f"{path} missing", user_message=f"The folder {path} does not exist.")
    if not path.is_dir():
        raise NotAComfyFolder(f"{path} not a dir", user_message=f"{path} is a file; choose the ComfyUI folder "
                                                                "that contains main.py.")
    embedded = path / "python_embeded" / "python.exe"
    if embedded.exists() and (path / "ComfyUI" / "main.py").exists():
        return LaunchSpec((str(embedded), "-s", str(path / "ComfyUI" / "main.py"), "--windows-standalone-build"),
                          path, "portable")
    if (path / "main.py").exists() and ((path / "comfy").is_dir() or (path / "nodes.py").exists()):
        py = Path(python) if python else _venv_python(path)
        exe = str(py) if py else (shutil.which("python3") or shutil.which("python") or "python")
        return LaunchSpec((exe, "main.py"), path, "git")
    if (path / "ComfyUI" / "main.py").exists():
        return inspect_folder(path / "ComfyUI", python=python)
    raise NotAComfyFolder(
        f"{path}: no main.py/comfy or python_embeded",
        user_message=f"{path} is not a ComfyUI folder: it has no main.py (a git checkout) and no "
                     "python_embeded folder with run_nvidia_gpu.bat (the Windows portable build). "
                     "Choose the folder you cloned or unzipped ComfyUI into.")


def portable_drives_other_gpu(spec: LaunchSpec) -> bool:
    """An AMD or Intel portable build: NVML finds no NVIDIA card, yet --cpu would keep it off its GPU. Blocking."""
    return spec.kind == "portable" and any((spec.cwd / bat).exists() for bat in ("run_amd_gpu.bat",
                                                                                 "run_intel_gpu.bat"))


def command_spec(command: str, *, cwd: str | Path | None = None) -> LaunchSpec:
    """A user's start command; ``{port}`` in it is replaced, else --listen/--port are appended."""
    text = command.strip()
    if not text:
        raise NotAComfyFolder("empty command", user_message="Enter the command that starts ComfyUI.")
    try:
        argv = tuple(shlex.split(text, posix=os.name != "nt"))
    except ValueError as exc:
        raise NotAComfyFolder(str(exc), user_message=f"The start command can't be read: {exc}.") from None
    return LaunchSpec(argv, Path(cwd).expanduser() if cwd else Path.cwd(), "command", "{port}" in text)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        if os.name != "nt":
            # As aiohttp does: a port in TIME_WAIT from our own last connection is free to a server.
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def build_argv(spec: LaunchSpec, *, port: int, flags: tuple[str, ...] = ()) -> list[str]:
    if spec.port_placeholder:
        return [a.replace("{port}", str(port)) for a in spec.argv] + list(flags)
    return [*spec.argv, "--listen", "127.0.0.1", "--port", str(port), "--disable-auto-launch", *flags]


# -- Windows: a Job Object that kills the whole tree when its last handle closes -------------

def _windows_job(proc: subprocess.Popen) -> int | None:  # pragma: no cover - Windows only
    if os.name != "nt":
        return None
    import ctypes
    from ctypes import wintypes

    class IO_COUNTERS(ctypes.Structure):
        _fields_ = [(n, ctypes.c_ulonglong) for n in ("ReadOperationCount", "WriteOperationCount",
                                                       "OtherOperationCount", "ReadTransferCount",
                                                       "WriteTransferCount", "OtherTransferCount")]

    class BASIC(ctypes.Structure):
        _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64), ("PerJobUserTimeLimit", ctypes.c_int64),
                    ("LimitFlags", wintypes.DWORD), ("MinimumWorkingSetSize", ctypes.c_size_t),
                    ("MaximumWorkingSetSize", ctypes.c_size_t), ("ActiveProcessLimit", wintypes.DWORD),
                    ("Affinity", ctypes.c_size_t), ("PriorityClass", wintypes.DWORD),
                    ("SchedulingClass", wintypes.DWORD)]

    class EXTENDED(ctypes.Structure):
        _fields_ = [("BasicLimitInformation", BASIC), ("IoInfo", IO_COUNTERS),
                    ("ProcessMemoryLimit", ctypes.c_size_t), ("JobMemoryLimit", ctypes.c_size_t),
                    ("PeakProcessMemoryUsed", ctypes.c_size_t), ("PeakJobMemoryUsed", ctypes.c_size_t)]

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    k32.CreateJobObjectW.restype = wintypes.HANDLE
    job = k32.CreateJobObjectW(None, None)
    if not job:
        log.warning("CreateJobObject failed: %s", ctypes.get_last_error())
        return None
    info = EXTENDED()
    info.BasicLimitInformation.LimitFlags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    ok = k32.SetInformationJobObject(wintypes.HANDLE(job), 9, ctypes.byref(info), ctypes.sizeof(info))
    ok = ok and k32.AssignProcessToJobObject(wintypes.HANDLE(job), wintypes.HANDLE(int(proc._handle)))  # type: ignore[attr-defined]
    if not ok:
        log.warning("could not tie ComfyUI to a job object: %s", ctypes.get_last_error())
        k32.CloseHandle(wintypes.HANDLE(job))
        return None
    return int(job)


def _windows_close_job(job: int | None, *, kill: bool) -> None:  # pragma: no cover - Windows only
    if os.name != "nt" or not job:
        return
    import ctypes
    from ctypes import wintypes

    k32 = ctypes.WinDLL("kernel32", use_last_error=True)
    if kill:
        k32.TerminateJobObject(wintypes.HANDLE(job), 1)
    k32.CloseHandle(wintypes.HANDLE(job))


# -- the managed server ------------------------------------------------------------------------

LogListener = Callable[[str], None]
StateListener = Callable[[ServerState, str], None]


class ManagedServer:
    """One ComfyUI process (and its children) owned by the app. Use from the asyncio loop."""

    def __init__(self, spec: LaunchSpec | Callable[[], LaunchSpec], *, log_dir: Path,
                 flags: tuple[str, ...] = (), max_restarts: int = 2, start_timeout: float = 180.0,
                 env: dict[str, str] | None = None,
                 flags_provider: Callable[[LaunchSpec], Awaitable[tuple[str, ...]]] | None = None):
        self._spec = spec
        self._flags_provider = flags_provider
        # Flags the user asked for on top of the profile's (the planner's --lowvram).
        self.extra_flags: tuple[str, ...] = ()
        self.log_file = Path(log_dir) / LOG_NAME
        self.flags = tuple(flags)
        self.max_restarts = max_restarts
        self.start_timeout = start_timeout
        self.env = env
        self.state = ServerState.stopped
        self.message = ""
        self.port: int | None = None
        self.argv: tuple[str, ...] = ()  # the last command line started
        self.restarts = 0
        self.last_lines: collections.deque[str] = collections.deque(maxlen=40)
        self.log_listeners: list[LogListener] = []
        self.state_listeners: list[StateListener] = []
        self.started_listeners: list[Callable[[str], object]] = []
        self._proc: subprocess.Popen | None = None
        self._job: int | None = None
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._restart_task: asyncio.Task | None = None
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" if self.port else ""

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _set_state(self, state: ServerState, message: str = "") -> None:
        self.state, self.message = state, message
        for cb in list(self.state_listeners):
            try:
                cb(state, message)
            except Exception:
                log.exception("server state listener failed")

    def _on_line(self, line: str) -> None:
        self.last_lines.append(line)
        for cb in list(self.log_listeners):
            try:
                cb(line)
            except Exception:
                log.exception("server log listener failed")

    # -- start ---------------------------------------------------------------------------
    async def start(self, port: int | None = None) -> str:
        """Start (if not running) and return the base URL once /system_stats answers."""
        async with self._lock:
            if self.running and self.state is ServerState.running:
                return self.url
            self.restarts = 0
            return await self._start(port)

    async def _start(self, port: int | None) -> str:
        self._loop = asyncio.get_running_loop()
        spec = self._spec() if callable(self._spec) else self._spec
        if port is None:
            port = await asyncio.to_thread(free_port)
        elif not await asyncio.to_thread(port_is_free, port):
            raise PortInUse(f"port {port} taken",
                            user_message=f"Port {port} is already in use by another program (perhaps another "
                                         "ComfyUI). Stop it, or leave the port empty so the app picks a free one.")
        self.port = port
        if self._flags_provider is not None:
            self.flags = tuple(await self._flags_provider(spec))
        flags = self.flags + tuple(f for f in self.extra_flags if f not in self.flags and f not in spec.argv)
        argv = build_argv(spec, port=port, flags=flags)
        self.argv = tuple(argv)
        self._set_state(ServerState.starting, f"Starting ComfyUI on port {port}…")
        self.last_lines.clear()
        self._stopping = False
        self._on_line(f"[studio] starting: {' '.join(argv)} (in {spec.cwd})")
        try:
            proc = await asyncio.to_thread(self._spawn, argv, spec.cwd)
        except OSError as exc:
            self._set_state(ServerState.failed, str(exc))
            raise ServerExited(str(exc), user_message=f"ComfyUI could not be started: {exc.strerror or exc} "
                                                       f"({argv[0]}).") from None
        self._proc = proc
        try:
            await self._wait_ready(proc)
        except BaseException:
            await self._kill(proc)
            raise
        self._set_state(ServerState.running, f"ComfyUI is running at {self.url}")
        for cb in list(self.started_listeners):
            try:
                result = cb(self.url)
                if asyncio.iscoroutine(result):
                    await result
            except Exception:
                log.exception("server started listener failed")
        return self.url

    def _spawn(self, argv: list[str], cwd: Path) -> subprocess.Popen:
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        kw: dict = {}
        if os.name == "nt":  # pragma: no cover
            kw["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            kw["start_new_session"] = True  # its own process group: stop() kills the whole tree
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=env, **kw)
        self._job = _windows_job(proc)
        threading.Thread(target=self._pump, args=(proc, self._loop), name=f"comfyui-log-{proc.pid}",
                         daemon=True).start()
        # A separate waiter: children inherit the output pipe, so EOF can come long after exit.
        threading.Thread(target=self._wait, args=(proc, self._loop), name=f"comfyui-wait-{proc.pid}",
                         daemon=True).start()
        return proc

    def _wait(self, proc: subprocess.Popen, loop: asyncio.AbstractEventLoop) -> None:
        rc = proc.wait()
        try:
            loop.call_soon_threadsafe(self._on_exit, proc, rc)
        except RuntimeError:  # the loop is closed: the app is gone
            pass

    def _pump(self, proc: subprocess.Popen, loop: asyncio.AbstractEventLoop) -> None:
        """Reader thread: copy output to the log file and hand lines to the loop."""
        def post(fn, *args) -> None:
            try:
                loop.call_soon_threadsafe(fn, *args)
            except RuntimeError:  # the loop is closed: the app is gone
                pass

        assert proc.stdout is not None
        with open(self.log_file, "a", encoding="utf-8", errors="replace") as f, proc.stdout:
            for raw in proc.stdout:
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                f.write(line + "\n")
                f.flush()
                post(self._on_line, line)

    async def _wait_ready(self, proc: subprocess.Popen) -> None:
        deadline = asyncio.get_running_loop().time() + self.start_timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if proc.poll() is not None:
                    await asyncio.sleep(0.2)  # let the reader thread deliver the last lines
                    raise self._exited_error(proc.returncode)
                try:
                    r = await client.get(self.url + "/system_stats")
                    if r.status_code == 200 and "devices" in r.json():
                        return
                except (httpx.HTTPError, ValueError, OSError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise ServerStartTimeout(f"no answer after {self.start_timeout}s",
                                             user_message=f"ComfyUI did not answer within {self.start_timeout:.0f} s "
                                                          f"of starting. The log is at {self.log_file}.")
                await asyncio.sleep(0.25)

    def _exited_error(self, rc: int | None) -> StudioError:
        tail = [ln for ln in self.last_lines if not ln.startswith("[studio]")][-8:]
        text = "\n".join(tail)
        self._set_state(ServerState.failed, f"ComfyUI exited with code {rc}")
        if any(s in text.lower() for s in ("address already in use", "errno 98", "10048", "only one usage")):
            return PortInUse(text, user_message=f"Port {self.port} is already in use by another program.")
        return ServerExited(f"exit code {rc}\n{text}",
                            user_message=f"ComfyUI stopped right after starting (exit code {rc}). "
                                         f"Last lines of its log:\n{text or '(no output)'}")

    # -- crash and restart ---------------------------------------------------------------
    def _on_exit(self, proc: subprocess.Popen, rc: int) -> None:
        if proc is not self._proc or self._stopping or self.state is not ServerState.running:
            return
        self._on_line(f"[studio] ComfyUI exited unexpectedly with code {rc}")
        if self.restarts >= self.max_restarts:
            self._set_state(ServerState.failed, f"ComfyUI crashed (exit code {rc}) and was restarted "
                                                f"{self.restarts} times; it is not restarted again.")
            return
        self.restarts += 1
        self._set_state(ServerState.restarting, f"ComfyUI crashed (exit code {rc}); restarting "
                                                f"({self.restarts} of {self.max_restarts})…")
        self._restart_task = asyncio.ensure_future(self._restart())

    async def _restart(self) -> None:
        await asyncio.sleep(min(5.0, 1.0 * self.restarts))
        async with self._lock:
            if self._stopping:
                return
            if self._proc is not None:
                await self._kill(self._proc)  # children of the crashed server may still hold the GPU
            try:
                await self._start(self.port)
            except StudioError as exc:
                self._set_state(ServerState.failed, exc.user_message)

    # -- stop ----------------------------------------------------------------------------
    async def stop(self) -> None:
        """Stop the server and every process it started; safe to call at any time."""
        self._stopping = True
        task, self._restart_task = self._restart_task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        proc = self._proc
        if proc is not None:
            await self._kill(proc)
        if self.state is not ServerState.stopped:
            self._set_state(ServerState.stopped, "ComfyUI is stopped.")

    async def _kill(self, proc: subprocess.Popen) -> None:
        await asyncio.to_thread(_terminate_tree, proc, self._job)
        self._job = None

    def __repr__(self) -> str:
        return f"<ManagedServer {self.state} {self.url or '-'}>"


def _terminate_tree(proc: subprocess.Popen, job: int | None, grace: float = 10.0) -> None:
    """Blocking: ask the whole tree to stop, then kill what is left."""
    if os.name == "nt":  # pragma: no cover
        if proc.poll() is None:
            proc.send_signal(signal.CTRL_BREAK_EVENT)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _windows_close_job(job, kill=True)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        pass
    # Children may outlive the parent; the group is gone only when all are.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


# -- wiring into StudioCore ----------------------------------------------------------------------

def for_core(core) -> ManagedServer:
    """The managed server configured from ``core.settings``; registered to stop on close.

    Flags come from the local card's profile (``--preview-method auto``, ``--lowvram`` on
    small cards; ``--cpu`` when no NVIDIA driver is found). While it runs, the settings'
    runtime ``comfy_managed_url`` points at it; the address the user typed is never touched.
    """
    from studio_core import gpu
    from studio_core.hardware.profiles import DEFAULT_PROFILE, profile_for_total

    def spec() -> LaunchSpec:
        s = core.settings.current
        if s.comfy_start_command.strip():
            return command_spec(s.comfy_start_command, cwd=s.comfy_server_folder or None)
        return inspect_folder(s.comfy_server_folder)

    async def profile_flags(launch: LaunchSpec) -> tuple[str, ...]:
        info = await asyncio.to_thread(gpu.probe)
        prof = profile_for_total(int(info.total_mib)) if info else DEFAULT_PROFILE
        given = set(launch.argv)
        flags: list[str] = []
        if "--preview-method" not in given:
            flags += ["--preview-method", "auto"]
        # A user's own memory flag wins; argparse refuses two of them together.
        memory_flags = {"--lowvram", "--normalvram", "--highvram", "--novram", "--gpu-only", "--cpu"}
        other_gpu = info is None and await asyncio.to_thread(portable_drives_other_gpu, launch)
        if not given & memory_flags:
            if info is None and sys.platform != "darwin" and not other_gpu:
                flags.append("--cpu")  # CUDA builds of torch refuse to start without a driver
            elif info is not None and prof.lowvram:
                flags.append("--lowvram")
        return tuple(flags)

    server = ManagedServer(spec, log_dir=core.paths.logs, flags_provider=profile_flags)
    server.started_listeners.append(lambda url: core.settings.update(comfy_managed_url=url))
    changes = getattr(core, "changes", None)
    if changes is not None:  # widgets follow the server through core.changes
        from studio_core.changes import ServerOutput, ServerStateChanged

        server.state_listeners.append(lambda state, message: changes.publish(ServerStateChanged(str(state), message)))
        server.log_listeners.append(lambda line: changes.publish(ServerOutput(line)))

    def on_state(state: ServerState, _message: str) -> None:
        if state in (ServerState.stopped, ServerState.failed):
            core.settings.update(comfy_managed_url="")

    server.state_listeners.append(on_state)
    core.on_close(server.stop)
    return server
