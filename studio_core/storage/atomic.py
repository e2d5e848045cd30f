"""Write files so a crash or a full disk never leaves a half-written one behind."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from studio_core.errors import DiskFull, StorageError


def atomic_write_bytes(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    With ``exclusive`` the rename refuses to replace an existing file (``FileExistsError``),
    which is how callers claim a unique name without a check-then-write race.
    """
    path = Path(path)
    fd = -1
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix + ".part", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fd = -1
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if exclusive:
            # link() fails if the target exists: a race-free "create only if new".
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise
            except OSError:
                # Filesystems without hard links (some FAT/exFAT drives): best effort.
                if path.exists():
                    raise FileExistsError(str(path)) from None
                os.replace(tmp, path)
                tmp = ""
            else:
                os.unlink(tmp)
                tmp = ""
        else:
            os.replace(tmp, path)
            tmp = ""
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DiskFull(f"{exc.strerror} while writing {path.name}") from exc
        raise StorageError(
            f"{exc.__class__.__name__}: {exc.strerror or exc} ({path})",
            user_message=f"Could not write to {path.parent}: {exc.strerror or exc}.",
        ) from exc
    finally:
        if fd >= 0:
            os.close(fd)
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
