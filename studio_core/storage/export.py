"""Export / "Save as": a copy of a gallery image as PNG or WebP, with or without metadata."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image, UnidentifiedImageError

from studio_core.errors import NotAnImage, StorageError
from studio_core.storage.atomic import atomic_write_bytes
from studio_core.storage.images import STUDIO_CHUNK, read_metadata


def export_image(src: Path, dest: Path, *, with_metadata: bool = True, fmt: str | None = None) -> Path:
    """Write ``src`` to ``dest`` as PNG or WebP (from ``fmt`` or ``dest``'s suffix). Blocking.

    PNG keeps the text chunks (``parameters``, ``studio``, ComfyUI's ``prompt``) unless
    ``with_metadata`` is false. WebP is lossless (sprites need exact pixels and alpha) and
    carries the A1111 ``parameters`` text in EXIF UserComment, as A1111 does.
    """
    src, dest = Path(src), Path(dest)
    fmt = _check_fmt(fmt or dest.suffix.lstrip(".") or "png")
    if dest.suffix.lower() != f".{fmt}":
        dest = dest.with_suffix(f".{fmt}")
    atomic_write_bytes(dest, _encode(src, fmt, with_metadata))
    return dest


def _check_fmt(fmt: str) -> str:
    fmt = fmt.lower()
    if fmt not in ("png", "webp"):
        raise StorageError(f"unsupported format {fmt}", user_message="Export as PNG or WebP.")
    return fmt


def _encode(src: Path, fmt: str, with_metadata: bool) -> bytes:
    """The exported file's bytes. Blocking."""
    try:
        with Image.open(src) as img:
            img.load()
            text = dict(getattr(img, "text", {}) or {})
            import io

            buf = io.BytesIO()
            if fmt == "png":
                from PIL import PngImagePlugin

                info = PngImagePlugin.PngInfo()
                if with_metadata:
                    for k, v in text.items():
                        if k == STUDIO_CHUNK:
                            info.add_itxt(k, v, zip=True)
                        else:
                            info.add_text(k, v)
                img.save(buf, format="PNG", pnginfo=info)
            else:
                kwargs = {}
                if with_metadata and isinstance(text.get("parameters"), str):
                    exif = Image.Exif()
                    # 0x9286 UserComment, UNICODE-prefixed as A1111 writes it.
                    exif[0x9286] = b"UNICODE\0" + text["parameters"].encode("utf-16-be")
                    kwargs["exif"] = exif.tobytes()
                mode = "RGBA" if "A" in img.getbands() or img.mode == "P" else "RGB"
                img.convert(mode).save(buf, format="WEBP", lossless=True, quality=90, method=4, **kwargs)
    except FileNotFoundError as exc:
        raise StorageError(str(exc), user_message=f"{src.name} is no longer in the images folder.") from exc
    except (UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise NotAnImage(str(exc), user_message=f"{src.name} is not an image the studio can read.") from exc
    except OSError as exc:
        raise StorageError(str(exc), user_message=f"Could not read {src.name}: {exc.strerror or exc}.") from exc
    return buf.getvalue()


def has_metadata(path: Path) -> bool:
    try:
        return read_metadata(Path(path)).request is not None
    except NotAnImage:
        return False


@dataclasses.dataclass
class BatchExportResult:
    folder: Path
    exported: list[Path] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (file name, reason)

    def summary(self) -> str:
        """E.g. "12 exported to /x; 1 skipped: missing file"."""
        text = f"{len(self.exported)} exported to {self.folder}"
        if self.skipped:
            reasons: dict[str, int] = {}
            for _name, reason in self.skipped:
                reasons[reason] = reasons.get(reason, 0) + 1
            why = ", ".join(r if n == 1 else f"{r} ({n})" for r, n in reasons.items())
            text += f"; {len(self.skipped)} skipped: {why}"
        return text


def export_batch(sources: Sequence[Path], folder: Path, *, fmt: str = "png", with_metadata: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> BatchExportResult:
    """Export every file of ``sources`` into ``folder``, keeping its name. Blocking.

    An existing file is never replaced: the copy becomes ``name-2.png``, ``name-3.png``…
    A source that is missing or unreadable is skipped and reported; a folder that cannot be
    written to raises :class:`StorageError` (nothing else would succeed either).
    ``progress(done, total)`` is called after each file, from this (worker) thread.
    """
    fmt = _check_fmt(fmt)
    folder = Path(folder)
    if not folder.is_dir():
        raise StorageError(f"{folder} is not a folder", user_message=f"The folder {folder} does not exist.")
    result = BatchExportResult(folder)
    total = len(sources)
    for i, src in enumerate(sources, 1):
        src = Path(src)
        try:
            data = _encode(src, fmt, with_metadata)
        except NotAnImage:
            result.skipped.append((src.name, "not a readable image"))
        except StorageError:
            result.skipped.append((src.name, "missing file" if not src.exists() else "unreadable file"))
        else:
            result.exported.append(_write_unique(folder, src.stem, fmt, data))
        if progress is not None:
            progress(i, total)
    return result


def _write_unique(folder: Path, stem: str, fmt: str, data: bytes) -> Path:
    n = 1
    while True:
        dest = folder / (f"{stem}.{fmt}" if n == 1 else f"{stem}-{n}.{fmt}")
        try:
            atomic_write_bytes(dest, data, exclusive=True)
            return dest
        except FileExistsError:
            n += 1
