"""One script for a fresh machine: make the virtual environment, then run the app or the tests.

    python tools/dev.py run     # install (first time) and launch the app
    python tools/dev.py test    # install test tools and run the whole suite, as CI does

Works on Windows, macOS and Linux with Python 3.12+. Environments live in .venv/ (app and
tests) and .venv-core/ (the core alone, without Qt, to prove studio_core needs none).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WIN = os.name == "nt"


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def vpython(env: Path) -> Path:
    return env / ("Scripts/python.exe" if WIN else "bin/python")


def vbin(env: Path, name: str) -> Path:
    return env / ("Scripts" if WIN else "bin") / (name + (".exe" if WIN else ""))


def ensure_env(env: Path, requirements: list[str], *, editable_extras: str | None) -> Path:
    """Create ``env`` and install into it, skipping the install when nothing changed."""
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    key = hashlib.sha256(pyproject + repr((requirements, editable_extras, sys.version)).encode()).hexdigest()
    stamp = env / ".studio-stamp"
    if vpython(env).exists() and stamp.exists() and stamp.read_text() == key:
        return vpython(env)
    if not vpython(env).exists():
        say(f"creating {env.name} with Python {sys.version.split()[0]}")
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    py = str(vpython(env))
    args = [py, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    targets = list(requirements)
    if editable_extras is not None:
        targets += ["-e", f"{ROOT}[{editable_extras}]" if editable_extras else str(ROOT)]
    say(f"installing into {env.name}: {' '.join(targets)}")
    subprocess.run(args + targets, check=True)
    stamp.write_text(key)
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


def cmd_run(extra: list[str]) -> int:
    py = ensure_env(ROOT / ".venv", [], editable_extras="cloud")
    return subprocess.call([str(py), str(ROOT / "main.py"), *extra])


def pytest_ok(code: int, what: str) -> bool:
    if code == 5:
        say(f"{what}: no tests were collected, which counts as a failure")
        return False
    if code != 0:
        say(f"{what}: FAILED (exit {code})")
        return False
    return True


def cmd_test(extra: list[str]) -> int:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONDONTWRITEBYTECODE": "1"}
    py = ensure_env(ROOT / ".venv", [], editable_extras="cloud,test")
    ok = True

    say("1/4 import contracts (lint-imports): studio_core never imports Qt or studio_gui")
    code = subprocess.call([str(vbin(ROOT / ".venv", "lint-imports")), "--no-cache"], cwd=ROOT, env=env)
    ok &= code == 0

    say("2/4 core tests in an environment without PySide6")
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

    say("3/4 the whole suite (core, GUI offscreen, real ComfyUI server)")
    code = subprocess.call([str(py), "-m", "pytest", "-p", "no:cacheprovider", *extra], cwd=ROOT, env=env)
    ok &= pytest_ok(code, "full suite")

    if os.environ.get("STUDIO_SKIP_BUNDLE") == "1":
        say("4/4 bundle build skipped (STUDIO_SKIP_BUNDLE=1)")
    else:
        say("4/4 PyInstaller bundle from a runtime-only environment, then its smoke test")
        # The .venv interpreter: the smoke test's loopback service and its source-run timing need Pillow and the app.
        code = subprocess.call([str(py), str(ROOT / "packaging" / "build.py"), "--smoke"], cwd=ROOT, env=env)
        if code != 0:
            say(f"bundle build or smoke test FAILED (exit {code})")
        ok &= code == 0
    say("ALL GREEN" if ok else "SOMETHING FAILED (see above)")
    return 0 if ok else 1


def main() -> int:
    check_python()
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print(__doc__)
        return 2
    cmd, extra = sys.argv[1], sys.argv[2:]
    return cmd_run(extra) if cmd == "run" else cmd_test(extra)


if __name__ == "__main__":
    raise SystemExit(main())
