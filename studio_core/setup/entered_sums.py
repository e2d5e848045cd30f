"""SHA-256 sums the user pasted for files the app ships without one (per URL, in settings).

A release archive that came out after the app was built has no pinned sum, and the app
never runs what it has not verified. The user can copy the sum from the release page; it
is checked for shape here, kept in ``Settings.setup_entered_sums`` as
``{url: {"sha256": hex, "name": file name}}`` and then the download is verified against it
exactly as against a pinned one. It only fills gaps: a pinned sum always wins.
"""

from __future__ import annotations

import re
from typing import Any, Mapping

from studio_core.setup.catalog import FileSpec
from studio_core.setup.errors import BadChecksumText

_HEX64 = re.compile(r"[0-9a-f]{64}")
# What release pages and tools print around the sum: "sha256:…", "SHA256: …", "<sum>  file.zip".
_PREFIX = re.compile(r"^(sha-?256)\s*[:=]?\s*", re.IGNORECASE)


def parse_sha256(text: str, *, name: str = "the file") -> str:
    """The sum in ``text`` as 64 lower-case hex digits; BadChecksumText saying what is wrong."""
    raw = _PREFIX.sub("", text.strip()).split()
    candidate = raw[0].lower() if raw else ""
    if not candidate:
        raise BadChecksumText("empty", user_message=f"Paste the SHA-256 checksum of {name} first.")
    if len(raw) > 2 or (len(raw) == 2 and not raw[1].lstrip("*").endswith(name)):
        raise BadChecksumText(text[:100], user_message=(
            f"Paste only the SHA-256 checksum of {name}: 64 letters and digits, without other text."))
    if not _HEX64.fullmatch(candidate):
        bad = sorted({c for c in candidate if c not in "0123456789abcdef"})
        why = (f"it has {len(candidate)} characters, a SHA-256 has 64" if len(candidate) != 64
               else f"it contains {', '.join(repr(c) for c in bad[:5])}; only 0-9 and a-f can appear")
        raise BadChecksumText(candidate[:100], user_message=f"That is not a SHA-256 checksum of {name}: {why}.")
    return candidate


def sums_from_settings(stored: Mapping[str, Any]) -> dict[str, str]:
    """{url: sum} from the settings field; entries that are not a well-formed sum are ignored."""
    out: dict[str, str] = {}
    for url, entry in (stored or {}).items():
        sha = entry.get("sha256") if isinstance(entry, Mapping) else None
        if isinstance(sha, str) and _HEX64.fullmatch(sha):
            out[url] = sha
    return out


def remember(stored: Mapping[str, Any], spec: FileSpec, text: str) -> dict[str, Any]:
    """The settings field with ``text`` (validated) stored for ``spec``'s URL; raises BadChecksumText."""
    sha = parse_sha256(text, name=spec.name)
    return {**dict(stored or {}), spec.url: {"sha256": sha, "name": spec.name}}


def forget(stored: Mapping[str, Any], url: str) -> dict[str, Any]:
    return {k: v for k, v in dict(stored or {}).items() if k != url}
