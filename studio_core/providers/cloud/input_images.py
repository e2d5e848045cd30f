"""A request's image inputs made ready for a cloud service: checked, read, converted.

Every cloud provider goes through here before it sends anything: the catalog says whether
the model takes the inputs (:func:`check`, which names a model of the service that does),
the input store gives the bytes (checked against their digest), and the provider's own
size limits are applied. Masks are stored as the studio paints them (greyscale, white =
redraw); the services want other forms, made here: OpenAI wants transparency where the
image is redrawn, Titan wants black there.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageOps

from studio_core.errors import InputsNotSupported, StorageError
from studio_core.inputs import ImageInputs
from studio_core.providers.cloud.catalog import InputSupport, ProviderSpec


@dataclass(frozen=True, slots=True)
class InputImage:
    role: str  # "init" | "reference" | "mask" | "control"
    digest: str
    data: bytes  # the stored PNG
    strength: float = 1.0  # init: denoise; reference: weight; control: strength
    kind: str = ""  # reference: character/style; control: pose/depth/lineart/canny
    mime: str = "image/png"

    @property
    def size(self) -> tuple[int, int]:
        with Image.open(io.BytesIO(self.data)) as img:
            return img.size


@dataclass(frozen=True, slots=True)
class Prepared:
    init: InputImage | None = None
    mask: InputImage | None = None
    references: tuple[InputImage, ...] = ()
    controls: tuple[InputImage, ...] = ()
    notices: tuple[str, ...] = ()

    @property
    def images(self) -> tuple[InputImage, ...]:
        """The pictures a service sees as its input images: the init image first, then the references."""
        return ((self.init,) if self.init else ()) + self.references

    @property
    def empty(self) -> bool:
        return not (self.init or self.references or self.controls)


def check(spec: ProviderSpec, model: str, inputs: ImageInputs) -> None:
    """InputsNotSupported, naming a model of this service that takes the inputs, when ``model`` is known not to."""
    if inputs.empty and inputs.mask is None:
        return
    problem = spec.inputs_problem(model, inputs)
    if problem:
        raise InputsNotSupported(f"{spec.id}/{model}: inputs not taken", user_message=problem)


def _mb(n: int) -> str:
    if n < 1_000_000:
        return f"{n / 1000:.0f} kB"
    return f"{n / 1_000_000:.1f} MB" if n < 10_000_000 else f"{n / 1_000_000:.0f} MB"


_WHAT = {"init": "init image", "reference": "reference image", "mask": "mask", "control": "control image"}


async def prepare(store: Any, inputs: ImageInputs, support: InputSupport, *, service: str, model: str) -> Prepared:
    """Read the images ``inputs`` name from ``store`` and apply the service's limits.

    Raises before anything is sent: an image the store no longer has (StorageError) or one
    over the service's documented size (InputsNotSupported, with the numbers). Facts the
    catalog does not know become notices ("not confirmed … trying").
    """
    if inputs.empty and inputs.mask is None:
        return Prepared()
    if store is None:
        raise StorageError(f"{service}: no input store for {inputs.digests()}", user_message=(
            "The studio could not find its folder of input images, so the image inputs cannot be sent."))

    async def read(role: str, digest: str, strength: float = 1.0, kind: str = "") -> InputImage:
        data = await asyncio.to_thread(store.read, digest)
        limit = support.mask_max_bytes if role == "mask" and support.mask_max_bytes else support.max_bytes
        if limit is not None and len(data) > limit:
            raise InputsNotSupported(f"{service}: {role} {digest} is {len(data)} bytes > {limit}", user_message=(
                f"The {_WHAT[role]} is {_mb(len(data))}; {service} takes "
                f"{'masks' if role == 'mask' else 'input images'} up to {_mb(limit)}."
                " Use a smaller or simpler image (fewer colours and less noise compress better)."))
        return InputImage(role, digest, data, strength, kind)

    init = await read("init", inputs.init.image, inputs.init.denoise) if inputs.init else None
    mask = await read("mask", inputs.mask.image) if inputs.mask else None
    refs = tuple([await read("reference", r.image, r.weight, r.kind) for r in inputs.references])
    ctrls = tuple([await read("control", c.image, c.strength, c.type) for c in inputs.controls])
    notes: list[str] = []
    unknown = [w for w, given, known in (("an init image", init, support.init), ("a mask", mask, support.mask),
                                         ("reference images", refs, support.references)) if given and known is None]
    if unknown:
        notes.append(f"It is not confirmed that {model} on {service} takes {' or '.join(unknown)}; trying.")
    return Prepared(init, mask, refs, ctrls, tuple(notes))


# ---- mask forms -------------------------------------------------------------------------


def _mask_grey(mask_png: bytes, size: tuple[int, int] | None) -> Image.Image:
    with Image.open(io.BytesIO(mask_png)) as img:
        grey = img.convert("L")
    if size is not None and grey.size != tuple(size):
        grey = grey.resize(size, Image.Resampling.NEAREST)
    return grey


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def transparent_where_redrawn(mask_png: bytes, size: tuple[int, int] | None = None) -> bytes:
    """OpenAI's form: an RGBA PNG, fully transparent where the image is redrawn. Blocking (Pillow)."""
    grey = _mask_grey(mask_png, size)
    keep = grey.point(lambda v: 0 if v >= 128 else 255)  # the painter's soft edge counts as redrawn past half
    out = Image.new("RGBA", grey.size, (0, 0, 0, 255))
    out.putalpha(keep)
    return _png(out)


def black_where_redrawn(mask_png: bytes, size: tuple[int, int] | None = None) -> bytes:
    """Titan's form: an RGB PNG, black (0 0 0) where the image is redrawn and white where it is kept."""
    grey = _mask_grey(mask_png, size)
    return _png(ImageOps.invert(grey.point(lambda v: 255 if v >= 128 else 0)).convert("RGB"))
