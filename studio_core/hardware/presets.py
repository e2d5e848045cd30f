"""Resolution presets per model family, custom sizes, and the three quality tiers."""

from __future__ import annotations

from dataclasses import dataclass

from studio_core.errors import StudioError
from studio_core.hardware.families import ModelFamily
from studio_core.hardware.profiles import HardwareProfile
from studio_core.models import QualityTier

MIN_SIDE = 64
MAX_SIDE = 4096


class InvalidSize(StudioError):
    user_message = "That size can't be used."


@dataclass(frozen=True, slots=True)
class SizePreset:
    label: str
    width: int
    height: int


_SPRITES = ((256, 256, "Sprite"), (384, 384, "Icon"))
_NATIVE: dict[int, tuple[tuple[int, int, str], ...]] = {
    # SDXL-class trained buckets (the SDXL paper's multi-aspect list) plus a small sprite size.
    1024: ((1024, 1024, "Square"), (896, 1152, "Portrait"), (1152, 896, "Landscape"),
           (832, 1216, "Tall"), (1216, 832, "Wide"), (768, 768, "Small square")),
    768: ((768, 768, "Square"), (640, 896, "Portrait"), (896, 640, "Landscape"),
          (576, 1024, "Tall"), (1024, 576, "Wide"), (512, 512, "Small square")),
    512: ((512, 512, "Square"), (512, 768, "Portrait"), (768, 512, "Landscape"),
          (448, 832, "Tall"), (832, 448, "Wide"), (640, 640, "Large square")),
}


def presets_for(family: ModelFamily) -> tuple[SizePreset, ...]:
    """Eight sizes: six native-resolution aspects, then two small sprite sizes."""
    side = family.native[0]
    native = _NATIVE.get(side) or _NATIVE[1024]
    items = [SizePreset(f"{label} {w}×{h}", w, h) for w, h, label in native]
    items += [SizePreset(f"{label} {w}×{h}", w, h) for w, h, label in _SPRITES]
    return tuple(items)


def parse_side(text: str | int, *, what: str = "Width") -> int:
    """A custom side in pixels, rounded to the nearest multiple of 8 (latents are 1/8 size).

    Raises InvalidSize with a message fit to show beside the field.
    """
    if isinstance(text, bool):
        raise InvalidSize(f"{what} {text!r}", user_message=f"{what} must be a number of pixels.")
    if isinstance(text, int):
        value = text
    else:
        s = str(text).strip().lower().removesuffix("px").strip()
        if not s:
            raise InvalidSize(f"{what} empty", user_message=f"Enter a {what.lower()} in pixels.")
        try:
            value = int(s)
        except ValueError:
            raise InvalidSize(f"{what} {text!r}", user_message=f"{what} must be a whole number of pixels, "
                                                               f"not “{str(text).strip()[:20]}”.") from None
    if value <= 0:
        raise InvalidSize(f"{what} {value}", user_message=f"{what} must be more than 0 pixels "
                                                          f"(at least {MIN_SIDE}).")
    if value < MIN_SIDE:
        raise InvalidSize(f"{what} {value}", user_message=f"{what} {value} px is too small; "
                                                          f"the smallest is {MIN_SIDE} px.")
    if value > MAX_SIDE:
        raise InvalidSize(f"{what} {value}", user_message=f"{what} {value} px is too large; the largest is "
                                                          f"{MAX_SIDE} px (make it smaller and upscale).")
    return max(MIN_SIDE, min(MAX_SIDE, int(round(value / 8)) * 8))


def parse_seed(text: str | int | None) -> int | None:
    """``None``/empty means random; otherwise 0 … 2**64-1 as ComfyUI's KSampler accepts."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    try:
        value = int(str(text).strip())
    except ValueError:
        raise InvalidSize(f"seed {text!r}", user_message="The seed must be a whole number, or empty for random.") from None
    if value < 0:
        raise InvalidSize(f"seed {value}", user_message="The seed can't be negative; use 0 or more, or leave it "
                                                       "empty for random.")
    if value > 2**64 - 1:
        raise InvalidSize(f"seed {value}", user_message="The seed is too large (the largest is 2^64−1).")
    return value


@dataclass(frozen=True, slots=True)
class QualitySpec:
    tier: QualityTier
    label: str
    steps: int
    cfg: float
    time_hint: str
    timeout_s: int


# The seed's QUALITY_PRESETS: 20/28/35 steps, CFG 6.0/7.0/7.5, ~25–45 s, ~2–5 min, up to 20 min.
_SEED = {
    QualityTier.optimized: ("Optimized", 20, 6.0, (25, 45)),
    QualityTier.high: ("High", 28, 7.0, (120, 300)),
    QualityTier.ultra: ("Ultra", 35, 7.5, (None, 1200)),
}


def _fmt(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    return f"{max(1, round(seconds / 60))} min"


def quality_spec(tier: QualityTier | str, *, profile: HardwareProfile | None = None,
                 family: ModelFamily | None = None) -> QualitySpec:
    """The tier's steps, CFG and time hint; hints scale with the card (the seed's are for a
    3050 at SDXL 1024²), step-distilled families (Turbo, schnell) keep their own steps/CFG."""
    tier = QualityTier(tier)
    label, steps, cfg, (lo, hi) = _SEED[tier]
    speed = profile.speed if profile else 1.0
    if family is not None and family.default_steps:
        steps = family.default_steps * {QualityTier.optimized: 1, QualityTier.high: 2, QualityTier.ultra: 2}[tier]
        cfg = family.default_cfg or cfg
        lo, hi = (lo or 0) * steps / 20, hi * steps / 20
    if lo:
        hint = f"~{_fmt(lo * speed)}–{_fmt(hi * speed)}"
    else:
        hint = f"up to {_fmt(hi * speed)}"
    return QualitySpec(tier, label, steps, cfg, hint, 1200)
