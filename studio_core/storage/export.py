"""Export / "Save as": a copy of a gallery image as PNG or WebP, with or without metadata."""

from __future__ import annotations

from pathlib import Path

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
    fmt = (fmt or dest.suffix.lstrip(".") or "png").lower()
    if fmt not in ("png", "webp"):
        raise StorageError(f"unsupported format {fmt}", user_message="Export as PNG or WebP.")
    if dest.suffix.lower() != f".{fmt}":
        dest = dest.with_suffix(f".{fmt}")
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
    atomic_write_bytes(dest, buf.getvalue())
    return dest


def has_metadata(path: Path) -> bool:
    try:
        return read_metadata(Path(path)).request is not None
    except NotAnImage:
        return False
