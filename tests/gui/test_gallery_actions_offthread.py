"""Open / Show in folder check the file in a worker, never on the GUI thread (issue 12)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from studio_core.errors import StorageError
from studio_gui.gallery import actions
from tests.fakes import png_bytes


@pytest.fixture
def stat_threads(monkeypatch):
    seen: list[str] = []
    real = Path.exists

    def exists(self, *a, **k):
        seen.append(threading.current_thread().name)
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "exists", exists)
    return seen


@pytest.mark.parametrize("action", ["open_in_viewer", "show_in_folder"])
def test_the_file_check_runs_off_the_gui_thread(action, tmp_path, loop, monkeypatch, stat_threads):
    opened: list[str] = []
    monkeypatch.setattr(actions.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    monkeypatch.setattr(actions.sys, "platform", "linux")
    img = tmp_path / "a.png"
    img.write_bytes(png_bytes())
    loop.run_until_complete(getattr(actions, action)(img))
    assert opened and stat_threads
    assert threading.main_thread().name not in stat_threads


def test_a_missing_file_is_named_in_plain_words(tmp_path, loop, stat_threads):
    with pytest.raises(StorageError) as ei:
        loop.run_until_complete(actions.open_in_viewer(tmp_path / "gone.png"))
    assert "gone.png is no longer in the images folder" in ei.value.user_message
    assert threading.main_thread().name not in stat_threads
