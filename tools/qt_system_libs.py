"""Which system libraries Qt's Linux plugins need, which are missing, and the one line that installs them.

The PySide6 wheels bring Qt itself but not the X11/xcb, OpenGL, font and D-Bus libraries it
links against. A desktop-less Debian lacks ``libxcb-icccm4`` and ``libxcb-keysyms1`` among
others, and Qt then blames ``libxcb-cursor0`` even when that one is installed. Asking ``ldd``
before Qt starts names the real culprits. Standard library only: ``tools/dev.py`` runs this
with whatever ``python3`` the user has.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

# soname -> (Debian/Ubuntu, Fedora/RHEL, Arch) package. Every library outside the wheel that
# the Qt files below link to directly is here (tests/core/test_dev_tool.py reads their ELF
# headers to keep it that way); a few more cover what those pull in.
PACKAGES: dict[str, tuple[str, str, str]] = {
    "libxcb.so.1": ("libxcb1", "libxcb", "libxcb"),
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm", "xcb-util-wm"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms", "xcb-util-keysyms"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb", "libxcb"),
    "libxcb-render.so.0": ("libxcb-render0", "libxcb", "libxcb"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil", "xcb-util-renderutil"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb", "libxcb"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util", "xcb-util"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb", "libxcb"),
    "libxcb-xinerama.so.0": ("libxcb-xinerama0", "libxcb", "libxcb"),
    "libxcb-xinput.so.0": ("libxcb-xinput0", "libxcb", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb", "libxcb"),
    "libxcb-glx.so.0": ("libxcb-glx0", "libxcb", "libxcb"),
    "libX11.so.6": ("libx11-6", "libX11", "libx11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb", "libx11"),
    "libXau.so.6": ("libxau6", "libXau", "libxau"),
    "libXdmcp.so.6": ("libxdmcp6", "libXdmcp", "libxdmcp"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11", "libxkbcommon-x11"),
    "libGL.so.1": ("libgl1", "libglvnd-glx", "libglvnd"),
    "libGLX.so.0": ("libglx0", "libglvnd-glx", "libglvnd"),
    "libGLdispatch.so.0": ("libglvnd0", "libglvnd", "libglvnd"),
    "libEGL.so.1": ("libegl1", "libglvnd-egl", "libglvnd"),
    "libOpenGL.so.0": ("libopengl0", "libglvnd-opengl", "libglvnd"),
    "libfontconfig.so.1": ("libfontconfig1", "fontconfig", "fontconfig"),
    "libfreetype.so.6": ("libfreetype6", "freetype", "freetype2"),
    "libdbus-1.so.3": ("libdbus-1-3", "dbus-libs", "dbus"),
    "libglib-2.0.so.0": ("libglib2.0-0", "glib2", "glib2"),
    "libgthread-2.0.so.0": ("libglib2.0-0", "glib2", "glib2"),
    "libpng16.so.16": ("libpng16-16", "libpng", "libpng"),
    "libz.so.1": ("zlib1g", "zlib", "zlib"),
    "libzstd.so.1": ("libzstd1", "libzstd", "zstd"),
    "libexpat.so.1": ("libexpat1", "expat", "expat"),
    "libwayland-client.so.0": ("libwayland-client0", "libwayland-client", "wayland"),
    "libwayland-cursor.so.0": ("libwayland-cursor0", "libwayland-cursor", "wayland"),
    "libwayland-egl.so.1": ("libwayland-egl1", "libwayland-egl", "wayland"),
}

# What a fresh Debian/Ubuntu needs for the app's window (xcb) and for the offscreen test run,
# as measured with ldd on PySide6 6.12's libqxcb.so + QtGui/QtWidgets. README and .ci/run
# list exactly these; the test keeps the three in step.
DEBIAN_PACKAGES = (
    "libxcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render0 "
    "libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 libxcb-xfixes0 libxcb-xkb1 "
    "libx11-6 libx11-xcb1 libxkbcommon0 libxkbcommon-x11-0 libgl1 libegl1 libfontconfig1 libfreetype6 "
    "libdbus-1-3 libglib2.0-0"
).split()

FAMILIES = {"apt": 0, "dnf": 1, "pacman": 2}
INSTALL = {"apt": "sudo apt-get install -y", "dnf": "sudo dnf install -y", "pacman": "sudo pacman -S --needed"}

# Debian marks these "required": every install has them, so the lists leave them out.
DEBIAN_BASE = {"zlib1g", "libzstd1"}

_QT_LIBS = ("libQt6Core.so.6", "libQt6Gui.so.6", "libQt6Widgets.so.6", "libQt6DBus.so.6")
# The platform plugins' own Qt library, when a plugin has one.
_PLUGIN_LIBS = {"xcb": "libQt6XcbQpa.so.6", "wayland": "libQt6WaylandClient.so.6"}


def parse_ldd(text: str) -> list[str]:
    """The sonames ``ldd`` reports as ``not found``, each once, in the order first seen."""
    missing: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*(\S+)\s+=>\s+not found", line)
        if m and m.group(1) not in missing:
            missing.append(m.group(1))
    return missing


def package_family(os_release: str) -> str | None:
    """apt, dnf or pacman from the text of /etc/os-release (ID, then ID_LIKE); None if unknown."""
    fields = {}
    for line in os_release.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"').strip("'").lower()
    ids = [fields.get("ID", "")] + fields.get("ID_LIKE", "").split()
    for i in ids:
        if i in {"debian", "ubuntu", "linuxmint", "pop", "raspbian", "kali", "elementary", "neon"}:
            return "apt"
        if i in {"fedora", "rhel", "centos", "rocky", "almalinux", "ol", "amzn"}:
            return "dnf"
        if i in {"arch", "manjaro", "endeavouros", "archarm"}:
            return "pacman"
    return None


def install_line(missing: list[str], family: str | None, *, as_root: bool | None = None) -> tuple[str, list[str]]:
    """The one command that installs ``missing`` and the sonames no package is known for.

    Unknown distributions get the Debian/Ubuntu names, labelled as such by the caller.
    """
    fam = family if family in FAMILIES else "apt"
    packages: list[str] = []
    unknown: list[str] = []
    for soname in missing:
        names = PACKAGES.get(soname)
        if names is None:
            unknown.append(soname)
        elif names[FAMILIES[fam]] not in packages:
            packages.append(names[FAMILIES[fam]])
    if as_root is None:
        as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    command = INSTALL[fam].removeprefix("sudo ") if as_root else INSTALL[fam]
    line = f"{command} {' '.join(packages)}" if packages else ""
    return line, unknown


def platform_plugin(env: dict[str, str]) -> str:
    """The Qt platform plugin Qt will load, as QT_QPA_PLATFORM and the session decide."""
    chosen = env.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    # Qt 6 prefers Wayland in a Wayland session and falls back to xcb; X11 sessions use xcb.
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland":
        return "wayland"
    return "xcb"


def qt_dir(venv: Path) -> Path | None:
    for site in sorted(venv.glob("lib/python3*/site-packages/PySide6/Qt")):
        return site
    return None


def qt_files(qt: Path, plugins: list[str]) -> list[Path]:
    files = [qt / "lib" / name for name in _QT_LIBS]
    files += [qt / "lib" / _PLUGIN_LIBS[p] for p in plugins if p in _PLUGIN_LIBS]
    files += [qt / "plugins" / "platforms" / f"libq{p}.so" for p in plugins]
    return [f for f in files if f.exists()]


def missing_libraries(venv: Path, plugins: list[str]) -> list[str] | None:
    """Sonames the given Qt platform plugins (and QtGui/QtWidgets) cannot find; None if unchecked."""
    qt = qt_dir(venv)
    if qt is None or shutil.which("ldd") is None:
        return None
    files = qt_files(qt, plugins)
    if not files:
        return None
    out = subprocess.run(["ldd", *map(str, files)], capture_output=True, text=True,
                         env={**os.environ, "LC_ALL": "C"})
    return parse_ldd(out.stdout)


def report(missing: list[str], os_release: str, *, as_root: bool | None = None) -> str:
    """What to tell the user, in plain words, with one install line."""
    family = package_family(os_release)
    line, unknown = install_line(missing, family, as_root=as_root)
    msg = [f"Qt cannot start: these system libraries are missing: {', '.join(missing)}."]
    if line:
        msg.append("Install them with:" if family else "On Debian/Ubuntu install them with:")
        msg.append(f"    {line}")
    if unknown:
        msg.append(f"No package is known here for {', '.join(unknown)}; your package manager's file search "
                   "(apt-file search, dnf provides, pacman -F) finds it.")
    return "\n".join(msg)


def read_os_release() -> str:
    for p in ("/etc/os-release", "/usr/lib/os-release"):
        try:
            return Path(p).read_text()
        except OSError:
            continue
    return ""


def elf_needed(path: Path) -> list[str]:
    """DT_NEEDED entries of a 64-bit little-endian ELF file: what it links to directly."""
    data = path.read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError(f"{path} is not a 64-bit little-endian ELF file")
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    loads, dynamic = [], None
    for i in range(phnum):
        p_type, _flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    needed, strtab = [], None
    for off in range(dynamic[0], dynamic[0] + dynamic[1], 16):
        tag, val = struct.unpack_from("<qQ", data, off)
        if tag == 0:
            break
        if tag == 1:
            needed.append(val)
        elif tag == 5:
            strtab = val
    if strtab is None:
        return []
    # DT_STRTAB is an address; the PT_LOAD segment holding it gives its place in the file.
    base = next(off + strtab - va for va, off, size in loads if va <= strtab < va + size)
    return [data[base + n:data.index(b"\0", base + n)].decode() for n in needed]
