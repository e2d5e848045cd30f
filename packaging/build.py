"""Build the one-folder bundle from a runtime-only virtual environment.

    python packaging/build.py            # -> dist/CloudAIArtStudio/
    python packaging/build.py --smoke    # build, then run packaging/smoke.py on the result

The build venv (.venv-bundle) holds the app, its cloud SDKs and PyInstaller, nothing from
the test tools: otherwise PyInstaller follows httpx's CLI into rich/pygments (stack.md §f).
Any Python 3.12 starts this script (it needs only the standard library); the smoke test
runs with .venv-bundle's interpreter, which has Pillow and the app for its loopback
service and its from-source timing.
On Windows run it the same way (`py -3.12 packaging\\build.py`) or through build.ps1.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from dev import check_python, ensure_env, say  # noqa: E402

DIST = ROOT / "dist"
WORK = ROOT / "build" / "pyinstaller"


def exe_path() -> Path:
    name = "CloudAIArtStudio.exe" if os.name == "nt" else "CloudAIArtStudio"
    return DIST / "CloudAIArtStudio" / name


def folder_size(p: Path) -> tuple[int, int]:
    total = files = 0
    for f in p.rglob("*"):
        if f.is_file() and not f.is_symlink():
            total += f.stat().st_size
            files += 1
    return total, files


def bundle_python() -> Path:
    return ensure_env(ROOT / ".venv-bundle", ["pyinstaller>=6.10"], editable_extras="cloud")


def smoke_command(py: Path, exe: Path) -> list[str]:
    return [str(py), str(ROOT / "packaging" / "smoke.py"), str(exe)]


def build(py: Path) -> Path:
    t0 = time.monotonic()
    say("running PyInstaller")
    subprocess.run([str(py), "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                    "--distpath", str(DIST), "--workpath", str(WORK), str(ROOT / "packaging" / "studio.spec")],
                   cwd=ROOT, check=True)
    size, files = folder_size(DIST / "CloudAIArtStudio")
    say(f"bundle built in {time.monotonic() - t0:.0f} s: {size / 1e6:.0f} MB in {files} files at {exe_path()}")
    return exe_path()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    check_python()
    py = bundle_python()
    exe = build(py)
    if a.smoke:
        return subprocess.call(smoke_command(py, exe), cwd=ROOT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
