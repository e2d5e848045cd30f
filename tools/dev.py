"""One script for a fresh machine: make the virtual environment, then run things with it.

    python tools/dev.py run [APP ARGS]        # install (first time) and launch the app
    python tools/dev.py test [PYTEST ARGS]    # install test tools and run the whole suite, as CI does
    python tools/dev.py shot OUT.png [ARGS]   # screenshot of the main window (tools/screenshot.py)
    python tools/dev.py shots [AREA|--list]   # one area's screenshots (tools/shots_AREA.py)
    python tools/dev.py demo [ARGS]           # end to end against the CPU ComfyUI server (tools/demo_real_comfy.py)
    python tools/dev.py bench NAME [ARGS]     # a benchmark (benchmarks/bench_NAME.py); --list names them
    python tools/dev.py bundle [--smoke]      # PyInstaller bundle (packaging/build.py), then its smoke test

Works on Windows, macOS and Linux with Python 3.12+. Environments live in .venv/ (app and
tests) and .venv-core/ (the core alone, without Qt, to prove studio_core needs none). The
scripts under tools/ and benchmarks/ need PySide6 and Pillow, so these subcommands run them
with .venv's interpreter whatever python started dev.py.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIN = os.name == "nt"
LINUX = sys.platform.startswith("linux")


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def vpython(env: Path) -> Path:
    return env / ("Scripts/python.exe" if WIN else "bin/python")


def vbin(env: Path, name: str) -> Path:
    return env / ("Scripts" if WIN else "bin") / (name + (".exe" if WIN else ""))


def ensure_env(env: Path, requirements: list[str], *, editable_extras: str | None) -> Path:
    """Create ``env`` and install into it, skipping the install when nothing changed.

    The stamp records the extras installed so far, so ``run`` after ``test`` (which adds
    the test extra) does not reinstall, and the next ``test`` does not either.
    """
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    base = hashlib.sha256(pyproject + repr((requirements, editable_extras is None, sys.version)).encode()).hexdigest()
    wanted = set(filter(None, (editable_extras or "").split(",")))
    stamp = env / ".studio-stamp"
    had: set[str] = set()
    if vpython(env).exists() and stamp.exists():
        key, _, extras = stamp.read_text().partition("\n")
        legacy = hashlib.sha256(pyproject + repr((requirements, editable_extras, sys.version)).encode()).hexdigest()
        if key == legacy:  # a stamp from before extras were recorded: same install, new format
            stamp.write_text(base + "\n" + ",".join(sorted(wanted)))
            return vpython(env)
        # Extras installed under an older pyproject are still there: reinstall them too.
        had = set(filter(None, extras.split(",")))
        if key == base and wanted <= had:
            return vpython(env)
    if not vpython(env).exists():
        say(f"creating {env.name} with Python {sys.version.split()[0]}")
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    py = str(vpython(env))
    args = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    targets = list(requirements)
    extras = sorted(wanted | had)
    if editable_extras is not None:
        targets += ["-e", f"{ROOT}[{','.join(extras)}]" if extras else str(ROOT)]
    say(f"installing into {env.name}: {' '.join(targets)}")
    subprocess.run(args + targets, check=True)
    stamp.write_text(base + "\n" + ",".join(extras))
    return vpython(env)


def core_requirements() -> list[str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    deps = data["project"]["dependencies"]
    extras = data["project"]["optional-dependencies"]
    qt = ("pyside6", "qasync", "shiboken6")
    keep = [d for d in deps if not d.lower().startswith(qt)]
    return keep + extras["cloud"] + [d for d in extras["test"] if not d.lower().startswith(("pytest-qt", "import-linter"))]


def check_python() -> None:
    if sys.version_info < (3, 12):
        sys.exit(f"Python 3.12 or newer is needed (this is {sys.version.split()[0]}). "
                 "PySide6 6.12 on Python 3.11 crashes after about a thousand signals.")


def system_libraries_ok(plugins: list[str]) -> bool:
    """On Linux, say which system libraries Qt lacks (and how to install them) before Qt starts."""
    if not LINUX or os.environ.get("STUDIO_SKIP_LIB_CHECK") == "1":
        return True
    import qt_system_libs

    missing = qt_system_libs.missing_libraries(ROOT / ".venv", plugins)
    if not missing:
        return True
    say(qt_system_libs.report(missing, qt_system_libs.read_os_release()).replace("\n", "\n[dev] "))
    say("(STUDIO_SKIP_LIB_CHECK=1 skips this check.)")
    return False


def cmd_run(extra: list[str]) -> int:
    py = ensure_env(ROOT / ".venv", [], editable_extras="cloud")
    import qt_system_libs

    if not system_libraries_ok([qt_system_libs.platform_plugin(dict(os.environ))]):
        return 1
    return subprocess.call([str(py), str(ROOT / "main.py"), *extra])


def app_python() -> Path:
    return ensure_env(ROOT / ".venv", [], editable_extras="cloud")


def script_names(folder: Path, prefix: str) -> list[str]:
    return sorted(p.stem[len(prefix):] for p in folder.glob(f"{prefix}*.py") if p.stem != f"{prefix}common")


def run_script(script: Path, extra: list[str]) -> int:
    return subprocess.call([str(app_python()), str(script), *extra], cwd=ROOT)


def cmd_named_script(kind: str, folder: Path, prefix: str, extra: list[str]) -> int:
    """``bench NAME`` / ``shots AREA``: run folder/prefixNAME.py with the project venv."""
    names = script_names(folder, prefix)
    if not extra or extra[0] in {"--list", "-l"}:
        print("\n".join(names))
        return 0 if extra else 2
    name = extra[0].removeprefix(prefix).removesuffix(".py")
    if name not in names:
        say(f"no {kind} called {extra[0]!r}; there are: {', '.join(names)}")
        return 2
    return run_script(folder / f"{prefix}{name}.py", extra[1:])


def cmd_shot(extra: list[str]) -> int:
    if not extra or extra[0].startswith("-"):
        say("usage: dev.py shot OUT.png [--data-dir DIR] [--tab saved]")
        return 2
    return run_script(ROOT / "tools" / "screenshot.py", extra)


def cmd_bundle(extra: list[str]) -> int:
    # build.py makes its own runtime-only venv and smoke-tests with it; any python 3.12 starts it.
    return subprocess.call([sys.executable, str(ROOT / "packaging" / "build.py"), *extra], cwd=ROOT)


def pytest_ok(code: int, what: str) -> bool:
    if code == 5:
        say(f"{what}: no tests were collected, which counts as a failure")
        return False
    if code != 0:
        say(f"{what}: FAILED (exit {code})")
        return False
    return True


# Dropping these makes uid 0 obey file modes like any user (capabilities(7)).
_PERMISSION_CAPS = "-dac_override,-dac_read_search,-fowner,-linux_immutable"


def unprivileged_prefixes() -> list[tuple[str, list[str]]]:
    """Ways to run a command without the power to ignore file permissions, best first.

    The throwaway user ``nobody`` is best, but it can only run an interpreter it can read,
    and a Python under /root (pyenv) is not; then root keeps its uid but loses the
    capabilities that bypass permission checks, which is what those tests need.
    """
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return []
    return [
        ("user nobody", [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]),
        ("root without the file-permission capabilities",
         [setpriv, f"--inh-caps={_PERMISSION_CAPS}", f"--bounding-set={_PERMISSION_CAPS}", "--"]),
    ]


def ran_all(output: str) -> bool:
    """True when pytest's closing line reports passes and no skips, failures or errors."""
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    last = lines[-1] if lines else ""
    return bool(re.search(r"\d+ passed", last)) and not re.search(r"skipped|failed|error", last)


def run_unprivileged_stage(py: Path, env: dict[str, str]) -> bool:
    """Run the ``unprivileged`` tests where file permissions hold; as root they skip."""
    scratch = Path(tempfile.mkdtemp(prefix="studio-unpriv-"))
    try:
        os.chmod(scratch, 0o777)  # the unprivileged user's HOME and pytest's base temp
        uenv = {**env, "HOME": str(scratch), "TMPDIR": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
        # Only the files that use the mark: collecting the whole suite again costs seconds.
        files = sorted(str(f.relative_to(ROOT)) for f in (ROOT / "tests").rglob("test_*.py")
                       if re.search(r"needs_unwritable_folders|mark\.unprivileged", f.read_text(encoding="utf-8")))
        if not files:
            say("no test is marked unprivileged: the unwritable-folder tests are gone")
            return False
        args = [str(py), "-m", "pytest", "-m", "unprivileged", "-p", "no:cacheprovider", "-q",
                "--basetemp", str(scratch / "pytest"), *files]
        for what, prefix in unprivileged_prefixes():
            probe = subprocess.run([*prefix, str(py), "-c", "import pytest, studio_core"], cwd=ROOT, env=uenv,
                                   capture_output=True)
            if probe.returncode != 0:
                continue
            say(f"    as {what}")
            out = subprocess.run([*prefix, *args], cwd=ROOT, env=uenv, capture_output=True, text=True)
            print(out.stdout + out.stderr, end="", flush=True)
            if out.returncode != 0 or not ran_all(out.stdout):
                say("the unprivileged tests must all run and pass here (none skipped)")
                return False
            return True
        say("cannot drop root's file-permission rights (setpriv from util-linux is needed); "
            "the unwritable-folder tests ran nowhere")
        return False
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def cmd_test(extra: list[str]) -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
    py = ensure_env(ROOT / ".venv", [], editable_extras="cloud,test")
    # The suite runs offscreen; the screenshot test uses Xvfb (so xcb) when it finds one.
    plugins = ["offscreen"] + (["xcb"] if shutil.which("xvfb-run") or os.environ.get("DISPLAY") else [])
    if not system_libraries_ok(plugins):
        say("install those, then run the tests again")
        return 1
    ok = True

    say("1/5 import contracts (lint-imports): studio_core never imports Qt or studio_gui")
    code = subprocess.call([str(vbin(ROOT / ".venv", "lint-imports")), "--no-cache"], cwd=ROOT, env=env)
    ok &= code == 0

    say("2/5 core tests in an environment without PySide6")
    core_py = ensure_env(ROOT / ".venv-core", core_requirements(), editable_extras=None)
    probe = subprocess.run([str(core_py), "-c", "import importlib.util,sys; sys.exit(importlib.util.find_spec('PySide6') is not None)"])
    if probe.returncode != 0:
        say(".venv-core unexpectedly has PySide6")
        ok = False
    code = subprocess.call(
        [str(core_py), "-m", "pytest", "tests/core", "-q", "-o", "addopts=-ra", "-W", "ignore::pytest.PytestConfigWarning", "-p", "no:cacheprovider", "-m", "not comfy_server"],
        cwd=ROOT, env={**env, "PYTHONPATH": str(ROOT)},
    )
    ok &= pytest_ok(code, "core tests without Qt")

    # Before the whole suite, so that the suite's closing pytest line stays the last one printed.
    if LINUX and os.geteuid() == 0:
        say("3/5 root ignores file permissions, so the whole suite skips the unwritable-folder tests: "
            "running them unprivileged")
        ok &= run_unprivileged_stage(py, env)
    else:
        say("3/5 unwritable-folder tests: the whole suite runs them (not root)")

    say("4/5 the whole suite (core, GUI offscreen, real ComfyUI server)")
    code = subprocess.call([str(py), "-m", "pytest", "-p", "no:cacheprovider", *extra], cwd=ROOT, env=env)
    ok &= pytest_ok(code, "full suite")

    if os.environ.get("STUDIO_SKIP_BUNDLE") == "1":
        say("5/5 bundle build skipped (STUDIO_SKIP_BUNDLE=1)")
    else:
        say("5/5 PyInstaller bundle from a runtime-only environment, then its smoke test")
        # This interpreter on purpose: build.py must work from a bare python3, as the README says.
        code = subprocess.call([sys.executable, str(ROOT / "packaging" / "build.py"), "--smoke"], cwd=ROOT, env=env)
        if code != 0:
            say(f"bundle build or smoke test FAILED (exit {code})")
        ok &= code == 0
    say("ALL GREEN" if ok else "SOMETHING FAILED (see above)")
    return 0 if ok else 1


COMMANDS = {
    "run": cmd_run,
    "test": cmd_test,
    "shot": cmd_shot,
    "shots": lambda extra: cmd_named_script("screenshot set", ROOT / "tools", "shots_", extra),
    "demo": lambda extra: run_script(ROOT / "tools" / "demo_real_comfy.py", extra),
    "bench": lambda extra: cmd_named_script("benchmark", ROOT / "benchmarks", "bench_", extra),
    "bundle": cmd_bundle,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    check_python()
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
