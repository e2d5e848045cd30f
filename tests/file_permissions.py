"""For tests of unwritable folders: they only mean something where file modes are obeyed.

Root (CI's user) and Windows (a folder's read-only flag does not stop writes) ignore the
modes these tests set, so there the tests skip. ``tools/dev.py test`` then runs the tests
marked ``unprivileged`` again without root's rights and fails if any of them skips, so they
run somewhere on every CI run.
"""

from __future__ import annotations

import functools
import os
import shutil
import tempfile

import pytest


@functools.cache
def modes_are_obeyed() -> bool:
    """Try what the tests rely on: creating a file in a folder with mode 0o500 must fail."""
    folder = tempfile.mkdtemp(prefix="studio-perm-probe-")
    try:
        os.chmod(folder, 0o500)
        try:
            with open(os.path.join(folder, "probe"), "w"):
                pass
        except PermissionError:
            return True
        return False
    finally:
        os.chmod(folder, 0o700)
        shutil.rmtree(folder, ignore_errors=True)


def needs_unwritable_folders(test):
    """Mark a test that makes a folder read-only and expects writes into it to fail."""
    test = pytest.mark.skipif(not modes_are_obeyed(),
                              reason="this process ignores file modes (root or Windows); "
                                     "tools/dev.py test runs it unprivileged")(test)
    return pytest.mark.unprivileged(test)
