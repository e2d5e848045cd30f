"""Is this an image? Plain data checking shared by providers (checking a reply) and
storage (before a write); kept apart from both so a provider never imports storage."""

from __future__ import annotations

import io

from PIL import Image, UnidentifiedImageError

from studio_core.errors import NotAnImage

MAX_PIXELS = 64 * 1024 * 1024  # 8k x 8k: far above any generator, far below a bomb

Image.MAX_IMAGE_PIXELS = MAX_PIXELS


def check_image_bytes(data: bytes) -> Image.Image:
    """Open and fully decode ``data``; raise NotAnImage for anything else (or a bomb)."""
    if not data:
        raise NotAnImage("empty response", user_message="The service returned an empty image.")
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > MAX_PIXELS:
            raise NotAnImage(f"{img.width}x{img.height} exceeds the pixel limit",
                             user_message=f"The image is too large ({img.width}×{img.height} pixels).")
        img.load()
        return img
    except NotAnImage:
        raise
    except Image.DecompressionBombError as exc:
        raise NotAnImage(str(exc), user_message="The image is too large to open safely.") from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        head = data[:16]
        raise NotAnImage(f"not a decodable image ({exc.__class__.__name__}); first bytes {head!r}",
                         user_message="The service returned data that is not an image.") from exc
