"""Input images: typed inputs and the content-addressed input store (no server)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from PIL import Image

from studio_core.errors import InvalidRequest, NotAnImage, StorageError
from studio_core.input_store import InputStore
from studio_core.inputs import ControlImage, ImageInputs, InitImage, LoraSpec, Mask, ReferenceImage


def png(size=(64, 64), colour=(200, 40, 40), mode="RGB", fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, colour).save(buf, fmt)
    return buf.getvalue()


@pytest.fixture
def store(tmp_path: Path) -> InputStore:
    return InputStore.in_data_folder(tmp_path / "data")


def test_same_image_is_stored_once_under_its_sha256(store: InputStore, tmp_path: Path):
    data = png()
    src = tmp_path / "hero.png"
    src.write_bytes(data)
    a = store.add_image(src, what="reference image")
    b = store.add_image(data)
    assert a.digest == b.digest == hashlib.sha256(data).hexdigest()  # a plain PNG is kept byte for byte
    assert a.path == tmp_path / "data" / "inputs" / f"{a.digest}.png"
    assert [p.name for p in store.folder.iterdir()] == [f"{a.digest}.png"]  # no temp files left
    assert store.read(a.digest) == data and a.notice == ""


def test_jpeg_is_stored_as_png_and_named_by_the_stored_bytes(store: InputStore):
    s = store.add_image(png(fmt="JPEG"))
    stored = s.path.read_bytes()
    assert stored[:8] == b"\x89PNG\r\n\x1a\n" and hashlib.sha256(stored).hexdigest() == s.digest


def test_non_image_and_empty_file_get_plain_messages(store: InputStore, tmp_path: Path):
    txt = tmp_path / "notes.txt"
    txt.write_text("not a picture")
    with pytest.raises(NotAnImage) as ei:
        store.add_image(txt)
    assert ei.value.user_message == "'notes.txt' is not an image the studio can read. Use a PNG, JPEG or WebP file."
    with pytest.raises(NotAnImage):
        store.add_init(b"", target=(64, 64))
    assert not store.folder.exists() or not any(store.folder.iterdir())  # nothing half-stored


def test_truncated_png_is_refused_even_when_kept_byte_for_byte(store: InputStore):
    data = png((64, 64), (1, 2, 3))
    with pytest.raises(NotAnImage):
        store.add_image(data[: len(data) - 20])


def test_missing_source_file_is_a_storage_error(store: InputStore, tmp_path: Path):
    with pytest.raises(StorageError) as ei:
        store.add_image(tmp_path / "gone.png")
    assert "'gone.png' could not be read" in ei.value.user_message


def test_size_caps(store: InputStore, monkeypatch):
    with pytest.raises(NotAnImage) as ei:
        store.add_image(png((4, 64)))
    assert "only 4×64 pixels" in ei.value.user_message
    monkeypatch.setattr("studio_core.input_store.MAX_SIDE", 100)
    with pytest.raises(NotAnImage) as ei:
        store.add_image(png((101, 64)))
    assert "101×64 pixels; the studio takes images up to 100×100" in ei.value.user_message


def test_init_far_larger_than_target_is_reduced_with_a_notice(store: InputStore):
    s = store.add_init(png((2048, 1024)), target=(256, 256))
    # Aspect kept and the target still covered: 2048x1024 → 512x256.
    assert (s.width, s.height) == (512, 256)
    assert Image.open(s.path).size == (512, 256)
    assert s.notice == ("The init image (2048×1024) is far larger than the 256×256 image being made; "
                        "it was reduced to 512×256.")
    near = store.add_init(png((400, 400)), target=(256, 256))  # less than twice: left alone
    assert (near.width, near.height, near.notice) == (400, 400, "")


def test_mask_checks(store: InputStore):
    ok = store.add_mask(png((64, 64), 255, mode="L"), size=(64, 64))
    assert ok.mode == "L" and ok.notice == ""
    grey_rgb = store.add_mask(png((64, 64), (255, 255, 255)), size=(64, 64))
    assert grey_rgb.mode == "L" and grey_rgb.notice == "The mask was converted to greyscale."
    scaled = store.add_mask(png((32, 32), 255, mode="L"), size=(64, 64))
    assert (scaled.width, scaled.height) == (64, 64) and "scaled from 32×32 to 64×64" in scaled.notice
    with pytest.raises(NotAnImage) as ei:
        store.add_mask(png((64, 64), (255, 0, 0)), size=(64, 64))
    assert "has colours in it, so it is not a mask" in ei.value.user_message
    with pytest.raises(NotAnImage) as ei:
        store.add_mask(png((64, 32), 255, mode="L"), size=(64, 64))
    assert ei.value.user_message == "The mask is 64×32 pixels but the image is 64×64; a mask must have the image's shape."
    with pytest.raises(NotAnImage) as ei:
        store.add_mask(png((64, 64), 0, mode="L"), size=(64, 64))
    assert "all black" in ei.value.user_message


def test_damaged_stored_input_is_never_read_back(store: InputStore):
    s = store.add_image(png())
    s.path.write_bytes(s.path.read_bytes()[:-4])
    with pytest.raises(StorageError) as ei:
        store.read(s.digest)
    assert "damaged" in ei.value.user_message
    with pytest.raises(StorageError):
        store.read("0" * 64)


D = hashlib.sha256(b"x").hexdigest()
E = hashlib.sha256(b"y").hexdigest()


def test_inputs_round_trip_through_metadata_form():
    inputs = ImageInputs(init=InitImage(D, 0.55), mask=Mask(E, 8),
                         references=(ReferenceImage(D, 0.7, "style"),),
                         controls=(ControlImage(E, "pose", 0.9, 0.0, 0.8),),
                         loras=(LoraSpec("pixel.safetensors", 0.8, 0.5), LoraSpec("off.safetensors", enabled=False)))
    assert ImageInputs.from_dict(inputs.to_dict()) == inputs
    assert inputs.digests() == (D, E)
    assert [lo.name for lo in inputs.active_loras] == ["pixel.safetensors"]
    assert ImageInputs().empty and ImageInputs.from_dict(None) == ImageInputs()


@pytest.mark.parametrize("make,words", [
    (lambda: InitImage(D, 1.0), "denoise strength must be between 0.01 and 0.99"),
    (lambda: InitImage("abc"), "not one the studio stored"),
    (lambda: ControlImage(D, "scribble"), "'scribble' is not one"),
    (lambda: ControlImage(D, "pose", start=0.5, end=0.5), "start before it ends"),
    (lambda: ReferenceImage(D, float("nan")), "reference weight must be between"),
    (lambda: LoraSpec(" "), "needs a file name"),
    (lambda: ImageInputs(mask=Mask(D)), "add an init image first"),
])
def test_bad_inputs_say_what_is_wrong(make, words):
    with pytest.raises(InvalidRequest) as ei:
        make()
    assert words in ei.value.user_message
