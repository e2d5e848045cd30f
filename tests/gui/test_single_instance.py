"""One studio per data folder: a second launch brings the first window forward and exits 0
(issue 12). Two real app processes, offscreen."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gui.test_signals import wait_for_line

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.name == "nt", reason="ends the first instance with SIGTERM")


def launch(data: Path) -> subprocess.Popen:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(data)}
    return subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--data-dir", str(data)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_a_second_launch_raises_the_first_window_and_exits(tmp_path: Path):
    data = tmp_path / "portable"
    first = launch(data)
    log_file = data / "logs" / "studio.log"
    try:
        wait_for_line(log_file, "main window up", first)
        from studio_core.paths import AppPaths

        assert (AppPaths.portable(data).data / "studio.lock").read_text().strip() == str(first.pid)
        second = launch(data)
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0, out[-3000:]
        assert "already running" in out and "brought forward" in out
        wait_for_line(log_file, "raise requested by a second launch", first)
        assert first.poll() is None, "the first instance must keep running"
    finally:
        if first.poll() is None:
            first.send_signal(signal.SIGTERM)
        out1, _ = first.communicate(timeout=120)
    assert first.returncode == 0, out1[-3000:]
    assert not list(data.rglob("studio.lock")), "the lock is released on a clean exit"


def test_a_second_launch_is_told_when_the_first_cannot_be_reached(tmp_path: Path):
    """A live owner that does not answer (here: this test process holds the lock)."""
    from studio_core.paths import AppPaths

    data = tmp_path / "portable"
    paths = AppPaths.portable(data)
    paths.ensure()
    (paths.data / "studio.lock").write_text(str(os.getpid()))
    second = launch(data)
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 1, out[-3000:]
    assert f"already running (process {os.getpid()})" in out
