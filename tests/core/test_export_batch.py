"""Batch export from the Saved tab: names kept, never overwriting, metadata optional."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from studio_core.errors import StorageError
from studio_core.storage import atomic
from studio_core.storage.export import export_batch


def make_png(path: Path, text: str = "a red potion\nSteps: 9") -> Path:
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGBA", (16, 16), (200, 20, 20, 128)).save(path, format="PNG", pnginfo=info)
    return path


@pytest.fixture
def sources(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    return [make_png(src / "potion.png"), make_png(src / "shield ✓.png")]


def test_names_kept_and_metadata_copied(tmp_path, sources):
    out = tmp_path / "out"
    out.mkdir()
    done = []
    res = export_batch(sources, out, fmt="png", with_metadata=True, progress=lambda i, n: done.append((i, n)))
    assert sorted(p.name for p in res.exported) == ["potion.png", "shield ✓.png"]
    assert not res.skipped
    assert done == [(1, 2), (2, 2)]
    with Image.open(out / "potion.png") as img:
        assert img.text["parameters"].startswith("a red potion")
    assert res.summary() == f"2 exported to {out}"


def test_collisions_suffixed_never_overwritten(tmp_path, sources):
    out = tmp_path / "out"
    out.mkdir()
    (out / "potion.png").write_bytes(b"keep me")
    res = export_batch(sources[:1] * 2, out, fmt="png")
    assert [p.name for p in res.exported] == ["potion-2.png", "potion-3.png"]
    assert (out / "potion.png").read_bytes() == b"keep me"


def test_metadata_stripped_when_asked_and_webp(tmp_path, sources):
    out = tmp_path / "out"
    out.mkdir()
    res = export_batch(sources, out, fmt="png", with_metadata=False)
    with Image.open(res.exported[0]) as img:
        assert "parameters" not in (img.text or {})
    res = export_batch(sources, out, fmt="webp", with_metadata=False)
    assert sorted(p.name for p in res.exported) == ["potion.webp", "shield ✓.webp"]
    with Image.open(res.exported[0]) as img:
        assert img.format == "WEBP"
        assert not img.getexif()


def test_missing_source_reported_not_fatal(tmp_path, sources):
    out = tmp_path / "out"
    out.mkdir()
    junk = tmp_path / "src" / "junk.png"
    junk.write_bytes(b"not a png")
    res = export_batch([sources[0], tmp_path / "gone.png", junk], out, fmt="png")
    assert [p.name for p in res.exported] == ["potion.png"]
    assert res.skipped == [("gone.png", "missing file"), ("junk.png", "not a readable image")]
    assert res.summary() == f"1 exported to {out}; 2 skipped: missing file, not a readable image"


def test_unwritable_folder_is_a_clear_storage_error(tmp_path, sources, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()

    def denied(*_a, **_k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(StorageError) as info:
        export_batch(sources, out, fmt="png")
    assert str(out) in info.value.user_message and "Permission denied" in info.value.user_message


def test_missing_folder_is_a_clear_storage_error(tmp_path, sources):
    with pytest.raises(StorageError) as info:
        export_batch(sources, tmp_path / "nowhere", fmt="png")
    assert "does not exist" in info.value.user_message
