"""ComfyUI from a pinned git commit: cloned into staging and checked by git itself.

A commit id is the hash of its tree, which is the hash of every file in it, and git
recomputes each object's id as it receives the pack. So ``git rev-parse HEAD`` equal to the
pinned commit (and ``git fsck`` passing) proves every file is the one pinned, with no
separately published checksum needed. The clone is shallow (``--depth 1 --branch <tag>``): a
tag moved upstream to another commit then fails the check instead of being trusted.

Every git call runs as a child process with its output passed on line by line; cancelling
kills it (git must not go on writing into a staging folder about to be removed).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path
from typing import Callable

from studio_core.setup.catalog import GitPin
from studio_core.setup.errors import GitFailed, GitNotFound, GitVerifyFailed

# No prompts for credentials (a mistyped URL must fail, not wait for a password), no pager,
# no user or system config that could rewrite the URL or hooks.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "GIT_CONFIG_NOSYSTEM": "1", "GIT_ASKPASS": "",
           "GCM_INTERACTIVE": "never"}


def find_git() -> str | None:
    """git's path, or None when it is not on PATH. Blocking (a PATH walk)."""
    return shutil.which("git")


async def _git(argv: list[str], cwd: Path | None, on_line: Callable[[str], None], *, what: str,
               git: str = "git") -> str:
    on_line(f"$ git {' '.join(argv)}")
    env = dict(os.environ, **GIT_ENV)
    try:
        proc = await asyncio.create_subprocess_exec(git, *argv, cwd=cwd, stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
    except FileNotFoundError:
        raise GitNotFound("git missing") from None
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        async for raw in proc.stdout:
            # git's progress rewrites one line with \r; only the last state of it is worth a log line
            line = raw.decode(errors="replace").rstrip().rsplit("\r", 1)[-1]
            lines.append(line)
            on_line(line)
        rc = await proc.wait()
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    if rc:
        tail = "\n".join(lines[-8:])
        raise GitFailed(f"git {' '.join(argv)}: exit {rc}\n{tail}", user_message=(
            f"git could not {what} (exit code {rc}). Last lines:\n{tail}"))
    return "\n".join(lines)


async def clone_verified(pin: GitPin, dest: Path, on_line: Callable[[str], None] = lambda line: None, *,
                         git: str = "git") -> None:
    """Clone ``pin`` into ``dest`` (which must not exist) and prove it is the pinned commit.

    Raises GitVerifyFailed when the tag names another commit or the objects don't check out.
    """
    await _git(["-c", "advice.detachedHead=false", "clone", "--depth", "1", "--branch", pin.tag,
                "--no-recurse-submodules", "--progress", pin.url, str(dest)], None, on_line,
               what=f"fetch ComfyUI {pin.tag} from {pin.url}", git=git)
    head = (await _git(["rev-parse", "HEAD"], dest, on_line, what="read the fetched commit", git=git)).strip()
    head = head.splitlines()[-1].strip() if head else ""
    if head != pin.commit:
        raise GitVerifyFailed(f"{pin.tag} is {head}, pinned {pin.commit}", user_message=(
            f"ComfyUI's tag {pin.tag} at {pin.url} points to commit {head[:12] or '(none)'}, not the commit "
            f"{pin.commit[:12]} this app pinned, so nothing was installed. The tag may have been moved; "
            "update the app for a newer pin."))
    try:
        await _git(["fsck", "--no-dangling", "--no-progress"], dest, on_line, what="verify the fetched files",
                   git=git)
    except GitFailed as exc:
        raise GitVerifyFailed(exc.args[0] if exc.args else "fsck", user_message=(
            f"The files git fetched for ComfyUI {pin.tag} failed git's own check, so nothing was installed. "
            f"{exc.user_message}")) from None


async def restore(folder: Path, commit: str, rels: list[str], on_line: Callable[[str], None] = lambda line: None,
                  *, git: str = "git") -> None:
    """Put back tracked files from the pinned commit (repair); git checks the objects it reads."""
    if rels:
        await _git(["checkout", commit, "--", *rels], folder, on_line, what="put back ComfyUI's files", git=git)
