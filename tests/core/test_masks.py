from __future__ import annotations

import pytest

from studio_core.masks import InvalidMask, check_mask


def test_mask_must_match_the_image_and_be_greyscale():
    check_mask((64, 32), (64, 32), greyscale=True)
    with pytest.raises(InvalidMask) as info:
        check_mask((64, 64), (64, 32), greyscale=True)
    assert "64×64" in info.value.user_message and "64×32" in info.value.user_message
    with pytest.raises(InvalidMask) as info:
        check_mask((64, 32), (64, 32), greyscale=False)
    assert "white where the image is repainted" in info.value.user_message
