"""One studio per data folder."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from studio_core.instance_lock import FILE, AlreadyRunning, InstanceLock


def test_a_live_owner_keeps_the_folder_and_the_message_says_so(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / FILE).write_text(str(holder.pid))
        with pytest.raises(AlreadyRunning) as info:
            InstanceLock(tmp_path).acquire()
        assert info.value.pid == holder.pid
        assert "already running" in info.value.user_message and str(holder.pid) in info.value.user_message
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_from_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (tmp_path / FILE).write_text(str(dead.pid))
    lock = InstanceLock(tmp_path)
    lock.acquire()
    assert lock.held and (tmp_path / FILE).read_text() == str(os.getpid())
    lock.release()
    assert not (tmp_path / FILE).exists()


def test_a_damaged_lock_file_is_taken_over_and_release_leaves_others_locks_alone(tmp_path):
    (tmp_path / FILE).write_text("not a pid")
    lock = InstanceLock(tmp_path)
    lock.acquire()
    assert lock.owner() == os.getpid()
    (tmp_path / FILE).write_text("999999999")  # someone else's now
    lock.release()
    assert (tmp_path / FILE).exists()


def test_core_open_with_lock_refuses_a_second_process(paths, isolated_home):
    from tests.conftest import run_async

    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (paths.data / FILE).write_text(str(holder.pid))

        async def main():
            from studio_core.app_core import StudioCore

            await StudioCore.open(paths, lock=True)

        with pytest.raises(AlreadyRunning):
            run_async(main())
    finally:
        holder.kill()
        holder.wait()
