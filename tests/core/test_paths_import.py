"""AppPaths: a portable start never imports platformdirs; the default still uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_portable_paths_do_not_import_platformdirs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_HOME"}
    code = ("import sys; from pathlib import Path; from studio_core.paths import AppPaths; "
            f"p = AppPaths.portable(Path({str(tmp_path)!r})); "
            "print(p.data.name, 'platformdirs' in sys.modules)")
    assert _run(code, env) == "data False"


def test_studio_home_does_not_import_platformdirs(tmp_path):
    env = {**os.environ, "STUDIO_HOME": str(tmp_path)}
    code = ("import sys; from studio_core.paths import AppPaths; p = AppPaths.default(); "
            "print(p.data, 'platformdirs' in sys.modules)")
    assert _run(code, env) == f"{tmp_path.resolve() / 'data'} False"


def test_default_paths_come_from_platformdirs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "STUDIO_HOME"}
    env.update(HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path / "xdg-data"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"))
    code = ("from studio_core.paths import AppPaths; import platformdirs; p = AppPaths.default(); "
            "d = platformdirs.PlatformDirs('CloudAIArtStudio', 'CloudAIArtStudio'); "
            "print(p.data == d.user_data_path, p.config == d.user_config_path, p.cache == d.user_cache_path, "
            "p.logs == d.user_log_path)")
    assert _run(code, env) == "True True True True"
