"""Input images kept once in the data folder, named by content: ``inputs/<sha256>.png``.

Every image a request uses (init, mask, references, control) goes through here first, so
it is checked before anything is sent: a file that is no image, one too large to open
safely, an init image far larger than the target (reduced, with a notice), a mask of the
wrong size or with colours in it (converted where the intent is clear, refused otherwise).
The digest is of the stored PNG, so a request, the saved metadata and a ComfyUI upload
all name the same bytes. Blocking (Pillow, hashing, disk): call it off the GUI thread.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # Pillow loads on first use: the Generate tab makes a store at start-up
    from PIL import Image

from studio_core.errors import DiskFull, NotAnImage, StorageError

FOLDER_NAME = "inputs"
MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_SIDE = 8192
MIN_SIDE = 8
# An init image more than this many times the target on a side is reduced before it is
# stored: encoding a 4096² image only to scale it to 512² would slow every job that uses it.
FAR_LARGER = 2.0
PNG_COMPRESS = 1  # inputs are uploaded once and read locally: speed over size


@dataclass(frozen=True, slots=True)
class StoredInput:
    digest: str
    path: Path
    width: int
    height: int
    mode: str
    notice: str = ""  # what was done to the image on the way in, for the user; "" when nothing


def _label(source: Path | bytes, what: str) -> str:
    return f"'{source.name}'" if isinstance(source, Path) else f"The {what}"


class InputStore:
    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @classmethod
    def in_data_folder(cls, data: Path) -> InputStore:
        return cls(Path(data) / FOLDER_NAME)

    def path(self, digest: str) -> Path:
        return self.folder / f"{digest}.png"

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def read(self, digest: str) -> bytes:
        """The stored bytes, checked against their name (a damaged file is never sent)."""
        try:
            data = self.path(digest).read_bytes()
        except FileNotFoundError as exc:
            raise StorageError(f"input {digest} missing", user_message=(
                "An input image of this request is no longer in the studio's data folder. Add it again.")) from exc
        except OSError as exc:
            raise StorageError(f"input {digest}: {exc}", user_message=f"An input image could not be read: {exc.strerror}.") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise StorageError(f"input {digest} does not match its digest", user_message=(
                "An input image in the studio's data folder is damaged. Add it again."))
        return data

    # ---- adding ------------------------------------------------------------------------

    def add_image(self, source: Path | bytes, *, what: str = "image") -> StoredInput:
        """A reference or control image, stored as it is (converted to PNG when it is not one)."""
        data, img, _size = self._open(source, what, pixels=False)
        return self._store(data, _normalised(img), unchanged=img.format == "PNG" and _plain_mode(img))

    def add_init(self, source: Path | bytes, *, target: tuple[int, int]) -> StoredInput:
        """An init image; reduced (aspect kept, still covering the target) when far larger."""
        from PIL import Image

        tw, th = (max(1, int(v)) for v in target)

        def far(w: int, h: int) -> bool:
            return w > FAR_LARGER * tw or h > FAR_LARGER * th

        def cover(w: int, h: int) -> tuple[int, int]:
            scale = max(tw / w, th / h)
            return max(1, round(w * scale)), max(1, round(h * scale))

        data, img, (w, h) = self._open(source, "init image", pixels=far,
                                       draft=lambda w, h: cover(w, h) if far(w, h) else None)
        if far(w, h):
            size = cover(w, h)
            # reducing_gap 1: an integer box reduction (an area average, which aliases nothing when
            # shrinking) as far as it goes, Lanczos only for the fraction left: a 2048² → 512² init
            # takes ~4 ms instead of ~20 ms (gap 2) or ~55 ms (plain Lanczos), and the sampler
            # re-noises the picture anyway.
            small = _normalised(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=1.0)
            note = (f"The init image ({w}×{h}) is far larger than the {tw}×{th} image being made; "
                    f"it was reduced to {size[0]}×{size[1]}.")
            return self._store(b"", small, unchanged=False, notice=note)
        return self._store(data, _normalised(img), unchanged=img.format == "PNG" and _plain_mode(img))

    def add_mask(self, source: Path | bytes, *, size: tuple[int, int]) -> StoredInput:
        """A mask for an image of ``size``: greyscale, white = redraw. Colours or another shape
        are refused; a grey image in colour mode or a mask of the same shape at another scale
        is converted, with a notice."""
        from PIL import Image, ImageChops

        data, img, _size = self._open(source, "mask")
        label = _label(source, "mask")
        notes = []
        if img.mode in ("1", "L", "LA", "I", "I;16", "F"):
            grey = img.convert("L") if img.mode != "LA" else img.getchannel("L")
        else:
            rgb = img.convert("RGB")
            r, g, b = rgb.split()
            if ImageChops.difference(r, g).getbbox() or ImageChops.difference(g, b).getbbox():
                raise NotAnImage(f"mask {label} has colour", user_message=(
                    f"{label} has colours in it, so it is not a mask. A mask is black and white: white where the "
                    "image is redrawn, black where it is kept."))
            grey = r
            notes.append("converted to greyscale")
        w, h = size
        if grey.size != (w, h):
            mw, mh = grey.size
            if abs(mw / mh - w / h) > 0.01:
                raise NotAnImage(f"mask {mw}x{mh} for image {w}x{h}", user_message=(
                    f"{label} is {mw}×{mh} pixels but the image is {w}×{h}; a mask must have the image's shape."))
            grey = grey.resize((w, h), Image.Resampling.BILINEAR)
            notes.append(f"scaled from {mw}×{mh} to {w}×{h}")
        if grey.getbbox() is None:
            raise NotAnImage("mask is all black", user_message=(
                f"{label} is all black, so nothing would change. Paint white where the image should be redrawn."))
        unchanged = not notes and img.format == "PNG" and img.mode == "L"
        note = f"The mask was {' and '.join(notes)}." if notes else ""
        return self._store(data, grey, unchanged=unchanged, notice=note)

    # ---- helpers -----------------------------------------------------------------------

    def _open(self, source: Path | bytes, what: str, pixels=True,
              draft=None) -> tuple[bytes, Image.Image, tuple[int, int]]:
        """Read and check: the bytes, the image and its upright size as the file has it.

        ``pixels`` (or a test of the size) says whether the pixels are needed. A plain PNG kept
        byte for byte needs none: its chunks are checked (CRCs) without decoding. ``draft(w, h)``
        (upright size) may name a smaller size that is enough: a JPEG is then decoded at 1/2 to
        1/8 scale (DCT scaling), at a fraction of the cost of decoding it whole."""
        from PIL import Image, ImageOps, UnidentifiedImageError

        from studio_core.imagecheck import MAX_PIXELS  # also sets Pillow's bomb limit

        label = _label(source, what)
        if isinstance(source, Path):
            try:
                if source.stat().st_size > MAX_FILE_BYTES:
                    raise NotAnImage(f"{source}: over {MAX_FILE_BYTES} bytes", user_message=(
                        f"{label} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; use a smaller image."))
                data = source.read_bytes()
            except NotAnImage:
                raise
            except OSError as exc:
                raise StorageError(f"{source}: {exc}",
                                   user_message=f"{label} could not be read: {exc.strerror or exc}.") from exc
        else:
            data = bytes(source)
        if len(data) > MAX_FILE_BYTES:
            raise NotAnImage(f"{what}: {len(data)} bytes", user_message=(
                f"{label} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; use a smaller image."))
        try:
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > MAX_PIXELS or max(w, h) > MAX_SIDE:
                raise NotAnImage(f"{what} {w}x{h} too large", user_message=(
                    f"{label} is {w}×{h} pixels; the studio takes images up to {MAX_SIDE}×{MAX_SIDE}."))
            if min(w, h) < MIN_SIDE:
                raise NotAnImage(f"{what} {w}x{h} too small", user_message=(
                    f"{label} is only {w}×{h} pixels; an input image needs at least {MIN_SIDE} on each side."))
            need = pixels(w, h) if callable(pixels) else pixels
            if img.format == "PNG":
                # Chunk structure and CRCs, without inflating the pixels: a cut-off file can still
                # decode without complaint when only its last chunks are missing.
                Image.open(io.BytesIO(data)).verify()
                # Not getexif(): on a PNG it inflates every pixel first (an eXIf chunk may follow
                # the image data); the chunk names say whether there is any EXIF at all.
                if not need and _plain_mode(img) and not _png_may_have_exif(data):
                    return data, img, (w, h)
            turned = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)  # stored sideways
            upright = (h, w) if turned else (w, h)
            want = draft(*upright) if draft is not None and img.format == "JPEG" else None
            if want:
                img.draft(img.mode, (want[1], want[0]) if turned else want)  # never below ``want``
            img.load()
            if img.getexif().get(0x0112, 1) != 1:
                img = ImageOps.exif_transpose(img)  # a phone photo stored sideways is meant upright
                img.format = None  # the file's bytes no longer show what is meant: re-encode
        except NotAnImage:
            raise
        except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
            raise NotAnImage(f"{what}: {exc.__class__.__name__}: {exc}", user_message=(
                f"{label} is not an image the studio can read. Use a PNG, JPEG or WebP file.")) from exc
        return data, img, upright

    def _store(self, data: bytes, img: Image.Image, *, unchanged: bool, notice: str = "") -> StoredInput:
        if not unchanged:
            buf = io.BytesIO()
            img.save(buf, "PNG", compress_level=PNG_COMPRESS)
            data = buf.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if not target.is_file():
            self._write(target, data)
        return StoredInput(digest, target, img.width, img.height, img.mode, notice)

    def _write(self, target: Path, data: bytes) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".in-", suffix=".tmp", dir=self.folder)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)  # the digest name only ever holds complete bytes
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            if exc.errno == 28:
                raise DiskFull(f"{target}: {exc}") from exc
            raise StorageError(f"{target}: {exc}", user_message=(
                f"The input image could not be kept in the data folder ({exc.strerror or exc}).")) from exc


_EXIF_TEXT = b"Raw profile type exif\0"  # the text chunk ImageMagick writes EXIF into; Pillow reads it too


def _png_may_have_exif(data: bytes) -> bool:
    """Whether a PNG (already verified) carries EXIF, by its chunk names alone."""
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        if kind == b"eXIf" or (kind in (b"tEXt", b"zTXt", b"iTXt") and data[pos + 8:pos + 8 + len(_EXIF_TEXT)] == _EXIF_TEXT):
            return True
        if kind == b"IEND":
            return False
        pos += 12 + length
    return True


def _plain_mode(img: Image.Image) -> bool:
    return img.mode in ("RGB", "RGBA", "L")


def _normalised(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency (a sprite's alpha is part of it)."""
    if img.mode in ("RGB", "RGBA", "L"):
        return img
    if img.mode in ("LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        return img.convert("RGBA")
    if img.mode in ("I", "I;16", "F"):
        return img.point(lambda v: v / 256).convert("L") if img.mode != "F" else img.convert("L")
    return img.convert("RGB")
