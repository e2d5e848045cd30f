"""studio_core must never load Qt: checked at run time, which also catches lazy imports."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import studio_core

ROOT = Path(__file__).resolve().parents[2]


def all_core_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(studio_core.__path__, "studio_core."))


def test_every_core_module_imports_without_qt():
    mods = all_core_modules()
    assert len(mods) >= 8
    code = (
        "import importlib, sys\n"
        f"mods = {mods!r}\n"
        "for m in mods:\n"
        "    try:\n"
        "        importlib.import_module(m)\n"
        "    except ImportError as e:\n"
        "        # optional cloud SDKs may be missing; Qt must not be why\n"
        "        assert 'PySide6' not in str(e) and 'qasync' not in str(e), (m, e)\n"
        "bad = sorted(k for k in sys.modules if k.split('.')[0] in {'PySide6', 'shiboken6', 'qasync', 'studio_gui'})\n"
        "assert not bad, bad\n"
        "print('ok', len(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ok")


def test_lint_imports_contract_catches_a_violation(tmp_path):
    """The import-linter contract is real: a core module importing Qt breaks it."""
    import shutil

    lint = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(lint).exists():
        import pytest

        pytest.skip("import-linter not installed in this environment")
    work = tmp_path / "proj"
    shutil.copytree(ROOT / "studio_core", work / "studio_core", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "studio_gui", work / "studio_gui", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", work / "pyproject.toml")
    ok = subprocess.run([lint, "--no-cache"], cwd=work, capture_output=True, text=True, timeout=300,
                        env={**__import__("os").environ, "PYTHONPATH": str(work)})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (work / "studio_core" / "sneaky.py").write_text("def f():\n    from PySide6.QtCore import QObject\n    return QObject\n")
    bad = subprocess.run([lint, "--no-cache"], cwd=work, capture_output=True, text=True, timeout=300,
                         env={**__import__("os").environ, "PYTHONPATH": str(work)})
    assert bad.returncode != 0
    assert "studio_core.sneaky" in bad.stdout
