"""Saving generated images: safe names, atomic writes, parameters embedded in the PNG.

Every saved PNG carries two text chunks:
- ``parameters``: the A1111 text layout that other tools (and many gallery viewers) read;
- ``studio``: this app's JSON (the full request, seed, timestamps, provider facts).
Extra chunks a provider hands over (ComfyUI's ``prompt`` graph) are kept as they are, so
ComfyUI can reload the image as a workflow.

These functions block (Pillow, disk); call them from a worker thread.
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from studio_core.errors import NotAnImage
from studio_core.imagecheck import MAX_PIXELS, check_image_bytes  # noqa: F401  (re-exported)
from studio_core.models import GenerationRequest, SavedImage
from studio_core.storage.atomic import atomic_write_bytes
from studio_core.storage.records import A1111_SERVICE

SNIPPET_MAX = 40
STUDIO_CHUNK = "studio"
_WINDOWS_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def safe_component(text: str, *, max_len: int = SNIPPET_MAX, fallback: str = "image") -> str:
    """A file-name piece that is safe on Windows, macOS and Linux.

    Keeps letters and digits (any script), turns everything else into single
    underscores, and refuses reserved device names and dot-only names.
    """
    text = unicodedata.normalize("NFKC", text)
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch.isalnum() and cat[0] in "LN":
            out.append(ch.lower())
        else:
            out.append("_")
    s = re.sub(r"_+", "_", "".join(out)).strip("_.")
    s = s[:max_len].rstrip("_")
    if not s or s.lower() in _WINDOWS_RESERVED or set(s) <= {"."}:
        s = fallback
    return s


def timestamp_for_name(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H-%M-%S-") + f"{when.microsecond // 1000:03d}Z"


def image_filename(service: str, prompt: str, when: datetime) -> str:
    return f"{safe_component(service, max_len=20, fallback='studio')}_{safe_component(prompt)}_{timestamp_for_name(when)}.png"


def a1111_parameters(request: GenerationRequest, seed: int | None) -> str:
    lines = [request.prompt]
    if request.negative_prompt:
        lines.append(f"Negative prompt: {request.negative_prompt}")
    fields = [
        f"Steps: {request.steps}",
        f"Sampler: {request.sampler}",
        f"Schedule type: {request.scheduler}",
        f"CFG scale: {request.cfg:g}",
        f"Seed: {seed if seed is not None else -1}",
        f"Size: {request.width}x{request.height}",
    ]
    if request.model:
        fields.append(f"Model: {request.model}")
    fields.append(f"Service: {request.service}")
    lines.append(", ".join(fields))
    return "\n".join(lines)


_A1111_FIELD = re.compile(r"\s*([\w ]+):\s*(\"(?:\\.|[^\\\"])*\"|[^,]*)(?:,|$)")


def parse_a1111(text: str) -> GenerationRequest | None:
    """Read an A1111 ``parameters`` chunk (ours or another tool's) back into a request."""
    if not text or not text.strip():
        return None
    lines = text.strip().split("\n")
    last = lines[-1] if len(lines) > 1 or "Steps:" in lines[-1] else ""
    if "Steps:" not in last:
        last = ""
        body = lines
    else:
        body = lines[:-1]
    prompt_lines, neg_lines, in_neg = [], [], False
    for line in body:
        if line.startswith("Negative prompt:"):
            in_neg = True
            line = line[len("Negative prompt:"):].strip()
        (neg_lines if in_neg else prompt_lines).append(line)
    fields = {m.group(1).strip(): m.group(2).strip() for m in _A1111_FIELD.finditer(last)} if last else {}
    d: dict[str, Any] = {"prompt": "\n".join(prompt_lines).strip(), "negative_prompt": "\n".join(neg_lines).strip()}

    def num(key: str, conv):
        try:
            return conv(fields[key])
        except (KeyError, ValueError):
            return None

    if (v := num("Steps", int)) is not None:
        d["steps"] = v
    if (v := num("CFG scale", float)) is not None:
        d["cfg"] = v
    if (v := num("Seed", int)) is not None:
        d["seed"] = v if v >= 0 else None
    if "Sampler" in fields:
        d["sampler"] = fields["Sampler"]
    if "Schedule type" in fields:
        d["scheduler"] = fields["Schedule type"]
    if "Model" in fields:
        d["model"] = fields["Model"]
    # Other tools write no "Service:"; filing their images under ComfyUI would make the
    # service filter say something nobody knows. This app always writes the field.
    d["service"] = fields.get("Service") or A1111_SERVICE
    if "Size" in fields:
        m = re.fullmatch(r"(\d+)x(\d+)", fields["Size"])
        if m:
            d["width"], d["height"] = int(m.group(1)), int(m.group(2))
    return GenerationRequest.from_dict(d)


@dataclass(frozen=True, slots=True)
class EmbeddedMetadata:
    request: GenerationRequest | None
    seed: int | None = None
    created: str = ""
    info: tuple[tuple[str, Any], ...] = ()
    source: str = ""  # "studio" | "a1111" | "comfyui" | ""
    comfy_prompt: str = ""


def read_metadata(path: Path) -> EmbeddedMetadata:
    """What an image file says about how it was made. Never raises for bad metadata."""
    try:
        with Image.open(path) as img:
            text = dict(getattr(img, "text", {}) or {})
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise NotAnImage(f"{path.name}: {exc.__class__.__name__}", user_message=f"{path.name} is not an image the studio can read.") from exc
    comfy = text.get("prompt", "") if isinstance(text.get("prompt"), str) else ""
    raw = text.get(STUDIO_CHUNK)
    if isinstance(raw, str):
        try:
            data = json.loads(raw)
            if isinstance(data, dict) and isinstance(data.get("request"), dict):
                seed = data.get("seed")
                info = data.get("info") if isinstance(data.get("info"), dict) else {}
                return EmbeddedMetadata(
                    request=GenerationRequest.from_dict(data["request"]),
                    seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
                    created=str(data.get("created", "")),
                    info=tuple(sorted((str(k), v) for k, v in info.items())),
                    source="studio",
                    comfy_prompt=comfy,
                )
        except ValueError:
            pass
    params = text.get("parameters")
    if isinstance(params, str):
        req = parse_a1111(params)
        if req is not None:
            return EmbeddedMetadata(request=req, seed=req.seed, source="a1111", comfy_prompt=comfy)
    if comfy:
        return EmbeddedMetadata(request=None, source="comfyui", comfy_prompt=comfy)
    return EmbeddedMetadata(request=None)


def encode_png(
    img: Image.Image,
    *,
    request: GenerationRequest | None,
    seed: int | None,
    created: str,
    info: Mapping[str, Any] | None = None,
    extra_text: Mapping[str, str] | None = None,
    with_metadata: bool = True,
) -> bytes:
    pnginfo = PngImagePlugin.PngInfo()
    if with_metadata and request is not None:
        pnginfo.add_text("parameters", a1111_parameters(request, seed))
        payload = {"request": request.to_dict(), "seed": seed, "created": created, "info": dict(info or {})}
        pnginfo.add_itxt(STUDIO_CHUNK, json.dumps(payload, ensure_ascii=False, default=str), zip=True)
        for k, v in (extra_text or {}).items():
            if k not in ("parameters", STUDIO_CHUNK):
                pnginfo.add_text(k, v)
    if img.mode not in ("RGB", "RGBA", "L", "LA", "P", "I", "I;16"):
        img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
    if with_metadata and img.mode in ("RGB", "RGBA", "L", "LA", "P"):
        # The gallery reads this instead of decoding the whole image (studio_core.thumbs).
        from studio_core.thumbs import THUMB_CHUNK, thumbnail_chunk

        pnginfo.add(THUMB_CHUNK, thumbnail_chunk(img))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=pnginfo, compress_level=4)
    return buf.getvalue()


def save_generated_image(
    data: bytes,
    request: GenerationRequest,
    *,
    folder: Path,
    seed: int | None = None,
    when: datetime | None = None,
    info: Mapping[str, Any] | None = None,
    extra_text: Mapping[str, str] | None = None,
) -> SavedImage:
    """Check ``data`` is an image, embed the parameters, and write it under ``folder``.

    The name follows the seed's scheme ``{service}_{prompt}_{timestamp}.png``; a name
    already taken gets ``-2``, ``-3``… The write is atomic and never replaces a file.
    """
    img = check_image_bytes(data)
    when = when or datetime.now(timezone.utc)
    created = when.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    eff_seed = seed if seed is not None else request.seed
    png = encode_png(img, request=request, seed=eff_seed, created=created, info=info, extra_text=extra_text)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    base = image_filename(request.service, request.prompt, when)
    stem = base[:-4]
    for n in range(1, 10_000):
        name = base if n == 1 else f"{stem}-{n}.png"
        target = folder / name
        try:
            atomic_write_bytes(target, png, exclusive=True)
        except FileExistsError:
            continue
        return SavedImage(
            path=target, request=request, created=created, seed=eff_seed, file_size=len(png),
            width=img.width, height=img.height, info=tuple(sorted((info or {}).items())),
        )
    raise FileExistsError(f"no free name for {base}")


# ---------------------------------------------------------------------------------------
# "Reuse settings" with image inputs


@dataclass(frozen=True, slots=True)
class ReusedRequest:
    """A saved image's request ready to run again: its inputs are the ones still in the input
    store (``paths`` names their files, digest → path, for showing them); ``notice`` says
    which inputs were left out because their images are gone."""

    request: GenerationRequest
    paths: tuple[tuple[str, Path], ...] = ()
    notice: str = ""


def reuse_request(request: GenerationRequest, store: Any) -> ReusedRequest:
    """``request`` with its inputs resolved against ``store`` (an InputStore). Blocking: stats files.

    The metadata names inputs by digest only, so an input deleted from the data folder (or an
    image made on another machine) cannot be restored; such inputs are dropped, never sent empty.
    """
    import dataclasses

    from studio_core.inputs import ImageInputs

    inputs = request.inputs
    if inputs.empty and not inputs.loras:
        return ReusedRequest(request)
    have = {d: store.path(d) for d in inputs.digests() if store.has(d)}
    gone: list[str] = []
    init, mask = inputs.init, inputs.mask
    if init is not None and init.image not in have:
        gone.append("the init image")
        init = None
    if mask is not None and (init is None or mask.image not in have):
        gone.append("the mask")
        mask = None
    refs = tuple(r for r in inputs.references if r.image in have)
    ctrls = tuple(c for c in inputs.controls if c.image in have)
    if len(refs) < len(inputs.references):
        gone.append(_count(len(inputs.references) - len(refs), "reference image"))
    if len(ctrls) < len(inputs.controls):
        gone.append(_count(len(inputs.controls) - len(ctrls), "control image"))
    kept = ImageInputs(init=init, mask=mask, references=refs, controls=ctrls, loras=inputs.loras)
    notice = ""
    if gone:
        notice = ("Restored without " + _join(gone) + ": the images are no longer in the studio's data folder."
                  " Add them again to use them.")
    return ReusedRequest(dataclasses.replace(request, inputs=kept),
                         tuple((d, p) for d, p in have.items() if d in kept.digests()), notice)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
