"""SIGTERM and SIGINT end the real app through its normal close path ("clean exit" in the log)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(os.name == "nt", reason="POSIX signals; Windows has no SIGTERM to send")


def wait_for_line(log_file: Path, text: str, proc: subprocess.Popen, deadline_s: float = 90) -> None:
    # A generous deadline only so a hang fails instead of blocking; nothing here is timed.
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if log_file.exists() and text in log_file.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"the app exited ({proc.returncode}) before logging {text!r}")
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the app did not log {text!r}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_closes_the_app_cleanly(tmp_path: Path, signum: signal.Signals):
    data = tmp_path / "portable"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "STUDIO_HOME": str(data)}
    proc = subprocess.Popen([sys.executable, str(ROOT / "main.py"), "--data-dir", str(data)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log_file = data / "logs" / "studio.log"
    try:
        wait_for_line(log_file, "main window up", proc)
        proc.send_signal(signum)
        out, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    log_text = log_file.read_text(errors="replace")
    assert proc.returncode == 0, out[-3000:]
    assert f"{signum.name} received: closing the window" in log_text
    assert log_text.rstrip().endswith("clean exit"), log_text[-2000:]
    # The close path ran: the window's state was saved on the way out.
    assert (data / "config" / "ui_state.json").exists()
    # Nothing failed on the way out (start-up errors are other tests' business).
    assert "Traceback" not in out.partition("received: closing the window")[2], out[-3000:]
