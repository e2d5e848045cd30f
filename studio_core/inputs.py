"""Image inputs of a generation: init image, mask, references, control images and LoRAs.

Images are named by the SHA-256 of the PNG the input store keeps (``input_store``), so a
request, its saved metadata and a ComfyUI upload all point at the same bytes without
carrying them. Plain frozen data, no I/O; ``to_dict``/``from_dict`` are the metadata form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from studio_core.errors import InvalidRequest

CONTROL_TYPES = ("pose", "depth", "lineart", "canny")
REFERENCE_KINDS = ("character", "style")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def _digest(value: str, what: str) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise InvalidRequest(f"{what}: {value!r} is not a SHA-256 hex digest",
                             user_message=f"The {what} is not one the studio stored; add the image again.")
    return value


def _within(value: float, lo: float, hi: float, what: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        v = float("nan")
    if not lo <= v <= hi:  # NaN fails too
        raise InvalidRequest(f"{what}={value!r} outside [{lo}, {hi}]",
                             user_message=f"The {what} must be between {lo:g} and {hi:g} (it is {value}).")
    return v


@dataclass(frozen=True, slots=True)
class InitImage:
    """Start from this image; ``denoise`` 1.0 would ignore it, so it stays below 1."""

    image: str  # digest
    denoise: float = 0.6

    def __post_init__(self) -> None:
        _digest(self.image, "init image")
        object.__setattr__(self, "denoise", _within(self.denoise, 0.01, 0.99, "denoise strength"))


@dataclass(frozen=True, slots=True)
class Mask:
    """Greyscale, the init image's size; white is redrawn, black kept."""

    image: str  # digest
    grow: int = 6  # pixels the mask is widened by, so the seam blends

    def __post_init__(self) -> None:
        _digest(self.image, "mask")
        object.__setattr__(self, "grow", int(_within(self.grow, 0, 64, "mask growth")))


@dataclass(frozen=True, slots=True)
class ReferenceImage:
    """An image the result should look like (a character or a style), by input-store digest."""

    image: str  # digest
    weight: float = 1.0
    kind: str = "character"

    def __post_init__(self) -> None:
        _digest(self.image, "reference image")
        object.__setattr__(self, "weight", _within(self.weight, 0.0, 2.0, "reference weight"))
        if self.kind not in REFERENCE_KINDS:
            raise InvalidRequest(f"reference kind {self.kind!r}",
                                 user_message=f"A reference is a character or a style, not '{self.kind}'.")


@dataclass(frozen=True, slots=True)
class ControlImage:
    """A ControlNet guide (pose, depth, line art, edges), by input-store digest."""

    image: str  # digest
    type: str = "pose"
    strength: float = 1.0
    start: float = 0.0
    end: float = 1.0
    model: str = ""  # ControlNet file on the server; "" lets the builder pick one of this type

    def __post_init__(self) -> None:
        _digest(self.image, "control image")
        if self.type not in CONTROL_TYPES:
            raise InvalidRequest(f"control type {self.type!r}",
                                 user_message=f"Control images are {', '.join(CONTROL_TYPES)}; '{self.type}' is not one.")
        object.__setattr__(self, "strength", _within(self.strength, 0.0, 2.0, "control strength"))
        start = _within(self.start, 0.0, 1.0, "control start")
        end = _within(self.end, 0.0, 1.0, "control end")
        if start >= end:
            raise InvalidRequest(f"control start {start} >= end {end}",
                                 user_message="The control image must start before it ends (start < end).")
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)


@dataclass(frozen=True, slots=True)
class LoraSpec:
    """A LoRA file on the ComfyUI server and how strongly it applies."""

    name: str
    strength_model: float = 1.0
    strength_clip: float = 1.0
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise InvalidRequest("empty LoRA name", user_message="A LoRA needs a file name.")
        object.__setattr__(self, "strength_model", _within(self.strength_model, -5.0, 5.0, "LoRA model strength"))
        object.__setattr__(self, "strength_clip", _within(self.strength_clip, -5.0, 5.0, "LoRA text strength"))


@dataclass(frozen=True, slots=True)
class ImageInputs:
    """Everything image-like a request carries besides its prompt."""

    init: InitImage | None = None
    mask: Mask | None = None
    references: tuple[ReferenceImage, ...] = ()
    controls: tuple[ControlImage, ...] = ()
    loras: tuple[LoraSpec, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.mask is not None and self.init is None:
            raise InvalidRequest("mask without init image",
                                 user_message="A mask needs the image it belongs to: add an init image first.")
        object.__setattr__(self, "references", tuple(self.references))
        object.__setattr__(self, "controls", tuple(self.controls))
        object.__setattr__(self, "loras", tuple(self.loras))

    @property
    def empty(self) -> bool:
        return not (self.init or self.references or self.controls or self.active_loras)

    @property
    def active_loras(self) -> tuple[LoraSpec, ...]:
        return tuple(lo for lo in self.loras if lo.enabled)

    def digests(self) -> tuple[str, ...]:
        """Every stored image these inputs use, each once, in graph order."""
        seen: list[str] = []
        for d in ([self.init.image] if self.init else []) + ([self.mask.image] if self.mask else []) \
                + [r.image for r in self.references] + [c.image for c in self.controls]:
            if d not in seen:
                seen.append(d)
        return tuple(seen)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.init:
            out["init"] = {"image": self.init.image, "denoise": self.init.denoise}
        if self.mask:
            out["mask"] = {"image": self.mask.image, "grow": self.mask.grow}
        if self.references:
            out["references"] = [{"image": r.image, "weight": r.weight, "kind": r.kind} for r in self.references]
        if self.controls:
            out["controls"] = [{"image": c.image, "type": c.type, "strength": c.strength, "start": c.start,
                                "end": c.end, "model": c.model} for c in self.controls]
        if self.loras:
            out["loras"] = [{"name": lo.name, "strength_model": lo.strength_model, "strength_clip": lo.strength_clip,
                             "enabled": lo.enabled} for lo in self.loras]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> ImageInputs:
        """Inverse of to_dict; unknown keys are ignored (metadata from a newer version)."""
        if not isinstance(data, Mapping):
            return cls()

        def pick(kind, value, names):
            if not isinstance(value, Mapping):
                raise InvalidRequest(f"bad {kind.__name__} entry {value!r}",
                                     user_message="The saved image inputs are damaged and could not be restored.")
            return kind(**{k: value[k] for k in names if k in value})

        init = pick(InitImage, data["init"], ("image", "denoise")) if data.get("init") else None
        mask = pick(Mask, data["mask"], ("image", "grow")) if data.get("mask") else None
        refs = tuple(pick(ReferenceImage, r, ("image", "weight", "kind")) for r in data.get("references") or ())
        ctrls = tuple(pick(ControlImage, c, ("image", "type", "strength", "start", "end", "model"))
                      for c in data.get("controls") or ())
        loras = tuple(pick(LoraSpec, lo, ("name", "strength_model", "strength_clip", "enabled"))
                      for lo in data.get("loras") or ())
        return cls(init=init, mask=mask, references=refs, controls=ctrls, loras=loras)
