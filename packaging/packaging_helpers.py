"""Small helpers for the PyInstaller spec: version, icon, version resource, optional SDKs."""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

# Optional provider SDKs: bundled when installed in the build venv, else reported in-app
# as "not included in this build" (studio_core.errors.DependencyMissing).
OPTIONAL_SDKS = ("openai", "google.genai", "google.auth", "botocore")


def bundle_version(root: Path) -> str:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def icon_file(root: Path) -> str:
    """Make the .ico (Windows) from resources/icons/app.png; other platforms use the PNG."""
    png = root / "resources" / "icons" / "app.png"
    out = root / "build" / "app.ico"
    out.parent.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    with Image.open(png) as img:
        img.save(out, sizes=[(16, 16), (24, 24), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    return str(out)


def version_file(root: Path, version: str) -> str:
    nums = [int(p) for p in version.split(".")[:3] if p.isdigit()] + [0, 0, 0, 0]
    tup = tuple(nums[:4])
    text = f"""VSVersionInfo(
  ffi=FixedFileInfo(filevers={tup}, prodvers={tup}, mask=0x3f, flags=0x0, OS=0x40004, fileType=0x1, subtype=0x0, date=(0, 0)),
  kids=[
    StringFileInfo([StringTable('040904B0', [
      StringStruct('CompanyName', 'Cloud AI Art Studio'),
      StringStruct('FileDescription', 'Cloud AI Art Studio'),
      StringStruct('FileVersion', '{version}'),
      StringStruct('InternalName', 'CloudAIArtStudio'),
      StringStruct('OriginalFilename', 'CloudAIArtStudio.exe'),
      StringStruct('ProductName', 'Cloud AI Art Studio'),
      StringStruct('ProductVersion', '{version}')])]),
    VarFileInfo([VarStruct('Translation', [1033, 1200])])
  ]
)
"""
    out = root / "build" / "version_info.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return str(out)


def optional_sdk_modules() -> list[str]:
    from PyInstaller.utils.hooks import collect_submodules

    mods: list[str] = []
    for name in OPTIONAL_SDKS:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if found:
            mods += collect_submodules(name, filter=lambda m: ".tests" not in m and "._test" not in m)
    return mods
