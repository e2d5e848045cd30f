"""Inpainting masks: what makes one usable with an image, in words a user can act on."""

from __future__ import annotations

from studio_core.errors import StudioError


class InvalidMask(StudioError):
    user_message = "This mask cannot be used with this image."


def check_mask(mask_size: tuple[int, int], image_size: tuple[int, int], *, greyscale: bool) -> None:
    """Raise InvalidMask unless a mask of ``mask_size`` fits an image of ``image_size``.
    A mask is greyscale, white where the image is repainted and black where it is kept."""
    (mw, mh), (iw, ih) = mask_size, image_size
    if (mw, mh) != (iw, ih):
        raise InvalidMask(f"mask {mw}x{mh}, image {iw}x{ih}",
                          user_message=f"The mask is {mw}×{mh} but the image is {iw}×{ih}. "
                                       "A mask must be exactly the image's size; paint a new one over this image.")
    if not greyscale:
        raise InvalidMask("mask has colours",
                          user_message="The mask has colours in it. A mask is black and white: white where the "
                                       "image is repainted, black where it is kept.")
