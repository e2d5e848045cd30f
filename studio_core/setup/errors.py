"""Setup failures, each with a message a user can act on."""

from __future__ import annotations

from studio_core.errors import StudioError


class SetupError(StudioError):
    user_message = "Setting up local generation failed."


class NotPinned(SetupError):
    """A catalog entry without a sha256: the app does not trust what it cannot check."""

    user_message = "A file in the plan has no pinned checksum, so the app will not install it."


class ChecksumMismatch(SetupError):
    user_message = "A downloaded file did not match its pinned checksum and was deleted."


class NotEnoughSpace(SetupError):
    user_message = "There is not enough free disk space for this setup."


class DiskFull(SetupError):
    user_message = "The disk filled up during the download; the partial setup was removed."


class DownloadFailed(SetupError):
    """The network broke and retries ran out; what was downloaded is kept for the next try."""

    user_message = "The download stopped. Click Try again to continue where it left off."
    retryable = True


class FolderInUse(SetupError):
    user_message = "That folder already holds something; choose an empty or new folder."


class AlreadyInstalled(SetupError):
    user_message = "ComfyUI is already installed in that folder. Use Repair to check it, or choose another folder."


class EnvironmentFailed(SetupError):
    user_message = "The Python environment for ComfyUI could not be created."


class BadArchive(SetupError):
    user_message = "The ComfyUI archive could not be unpacked."


class BadChecksumText(SetupError):
    user_message = "That is not a SHA-256 checksum: it should be 64 letters and digits (0-9, a-f)."


class UpdateFailed(SetupError):
    user_message = "The update did not finish; the installed ComfyUI was left as it was."


class UpdateRolledBack(SetupError):
    """The new release was put in place but did not start; the old one is back."""

    user_message = "The new ComfyUI did not start, so the previous one was put back."


class GitNotFound(SetupError):
    user_message = ("git is not installed (or not on PATH). Install git from your package manager or git-scm.com "
                    "and run the setup again, or use the source archive with a checksum you paste.")


class GitFailed(SetupError):
    """A git command failed (network, a wrong URL); nothing is installed."""

    user_message = "git could not fetch ComfyUI. Check the internet connection and try again."
    retryable = True


class GitVerifyFailed(SetupError):
    user_message = "The ComfyUI git fetched is not the pinned commit, so nothing was installed."
