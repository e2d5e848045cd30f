"""tools/dev.py and packaging/build.py: system-library check, subcommands, venv stamps, unprivileged stage."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

import dev  # noqa: E402
import qt_system_libs as qsl  # noqa: E402

LINUX = sys.platform.startswith("linux")

# ldd on PySide6 6.12's libqxcb.so on a desktop-less Debian 12 (shortened; real format).
LDD_XCB = """\
/x/PySide6/Qt/plugins/platforms/libqxcb.so:
\tlinux-vdso.so.1 (0x00007ffd0a9f2000)
\tlibQt6XcbQpa.so.6 => /x/PySide6/Qt/plugins/platforms/../../lib/libQt6XcbQpa.so.6 (0x00007f1c0a400000)
\tlibxcb-cursor.so.0 => /lib/x86_64-linux-gnu/libxcb-cursor.so.0 (0x00007f1c0a3f0000)
\tlibxcb-icccm.so.4 => not found
\tlibxcb-keysyms.so.1 => not found
\tlibxcb-randr.so.0 => /lib/x86_64-linux-gnu/libxcb-randr.so.0 (0x00007f1c0a3d0000)
/x/PySide6/Qt/lib/libQt6XcbQpa.so.6:
\tlibxcb-icccm.so.4 => not found
\tlibxkbcommon-x11.so.0 => not found
\t/lib64/ld-linux-x86-64.so.2 (0x00007f1c0a9c4000)
"""

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n'
UBUNTU = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n'
MINT = 'NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'
FEDORA = 'NAME="Fedora Linux"\nID=fedora\n'
ROCKY = 'ID="rocky"\nID_LIKE="rhel centos fedora"\n'
ARCH = 'NAME="Arch Linux"\nID=arch\n'
ALPINE = 'ID=alpine\n'


def test_ldd_output_gives_each_missing_library_once_in_order():
    assert qsl.parse_ldd(LDD_XCB) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxkbcommon-x11.so.0"]
    assert qsl.parse_ldd("\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x1)\n") == []


@pytest.mark.parametrize("text,family", [(DEBIAN, "apt"), (UBUNTU, "apt"), (MINT, "apt"), (FEDORA, "dnf"),
                                         (ROCKY, "dnf"), (ARCH, "pacman"), (ALPINE, None), ("", None)])
def test_distribution_family_from_os_release(text, family):
    assert qsl.package_family(text) == family


def test_one_install_line_per_distribution():
    missing = qsl.parse_ldd(LDD_XCB)
    deb = qsl.report(missing, DEBIAN, as_root=False)
    assert "sudo apt-get install -y libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0" in deb.splitlines()[-1]
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libxkbcommon-x11.so.0" in deb
    assert deb.count("install -y") == 1
    assert qsl.report(missing, FEDORA, as_root=False).splitlines()[-1].strip() == \
        "sudo dnf install -y xcb-util-wm xcb-util-keysyms libxkbcommon-x11"
    assert qsl.report(missing, ARCH, as_root=False).splitlines()[-1].strip() == \
        "sudo pacman -S --needed xcb-util-wm xcb-util-keysyms libxkbcommon-x11"
    # Unknown distribution: the Debian names, said to be those; an unknown soname is named.
    other = qsl.report(missing + ["libfancy.so.9"], ALPINE, as_root=False)
    assert "On Debian/Ubuntu" in other and "libxcb-icccm4" in other
    assert "No package is known here for libfancy.so.9" in other


def test_packages_shared_by_several_libraries_are_listed_once():
    line, unknown = qsl.install_line(["libGL.so.1", "libEGL.so.1", "libGLX.so.0"], "pacman", as_root=False)
    assert line == "sudo pacman -S --needed libglvnd" and unknown == []
    # root needs no sudo (and a bare container often has none)
    assert qsl.install_line(["libGL.so.1"], "apt", as_root=True)[0] == "apt-get install -y libgl1"


@pytest.mark.parametrize("env,plugin", [({}, "xcb"), ({"QT_QPA_PLATFORM": "offscreen"}, "offscreen"),
                                        ({"QT_QPA_PLATFORM": "wayland;xcb"}, "wayland"),
                                        ({"QT_QPA_PLATFORM": "vnc:size=800x600"}, "vnc"),
                                        ({"WAYLAND_DISPLAY": "wayland-0"}, "wayland")])
def test_platform_plugin_follows_qt_rules(env, plugin):
    assert qsl.platform_plugin(env) == plugin


def _real_qt() -> Path:
    qt = qsl.qt_dir(ROOT / ".venv")
    if not LINUX or qt is None:
        pytest.skip("needs Linux and PySide6 installed in .venv")
    return qt


def test_every_system_library_qt_links_to_has_a_package():
    """Read the real Qt files' ELF headers: a library Qt needs that the table lacks fails here."""
    qt = _real_qt()
    base = {"libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1", "libdl.so.2", "libpthread.so.0",
            "librt.so.1", "ld-linux-x86-64.so.2", "ld-linux-aarch64.so.1"}
    files = qsl.qt_files(qt, ["xcb", "offscreen"])
    assert any(f.name == "libqxcb.so" for f in files)
    wheel = {p.name for p in (qt / "lib").iterdir()}
    needed = {n for f in files for n in qsl.elf_needed(f)} - base - wheel
    assert {"libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libxcb-cursor.so.0"} <= needed
    assert sorted(needed - set(qsl.PACKAGES)) == []
    # The documented Debian list is exactly what those need (less what every Debian has).
    assert {qsl.PACKAGES[n][0] for n in needed} - qsl.DEBIAN_BASE == set(qsl.DEBIAN_PACKAGES)


def test_readme_and_ci_install_the_same_list():
    words = lambda text: set(re.split(r"[\s\"\\`]+", text))  # noqa: E731
    readme = words((ROOT / "README.md").read_text(encoding="utf-8"))
    ci_text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    ci = words(ci_text)
    for pkg in qsl.DEBIAN_PACKAGES:
        assert pkg in readme, pkg
        assert pkg in ci, pkg
    assert "apt-get install" in ci_text


def _fake_venv(tmp_path: Path, monkeypatch) -> list[list[str]]:
    """A project root whose .venv has Qt files, an ldd that reports two missing libraries,
    and a recorder in place of launching anything."""
    qt = tmp_path / ".venv" / "lib" / "python3.12" / "site-packages" / "PySide6" / "Qt"
    (qt / "plugins" / "platforms").mkdir(parents=True)
    (qt / "lib").mkdir()
    for f in ("plugins/platforms/libqxcb.so", "plugins/platforms/libqoffscreen.so", "lib/libQt6Gui.so.6"):
        (qt / f).write_bytes(b"")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    ldd = bin_dir / "ldd"
    ldd.write_text("#!/bin/sh\ncat <<'EOF'\n" + LDD_XCB + "EOF\n")
    ldd.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("STUDIO_SKIP_LIB_CHECK", raising=False)
    monkeypatch.setattr(dev, "ROOT", tmp_path)
    monkeypatch.setattr(dev, "ensure_env", lambda env, reqs, editable_extras: env / "bin" / "python")
    calls: list[list[str]] = []
    monkeypatch.setattr(dev.subprocess, "call", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    return calls


@pytest.mark.skipif(not LINUX, reason="the check runs on Linux only")
def test_run_stops_before_qt_with_the_install_line(tmp_path, monkeypatch, capsys):
    calls = _fake_venv(tmp_path, monkeypatch)
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.delenv("XDG_SESSION_TYPE", raising=False)
    assert dev.main(["run"]) == 1
    assert calls == []  # the app was never started
    out = capsys.readouterr().out
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1, libxkbcommon-x11.so.0" in out
    assert "libxcb-icccm4 libxcb-keysyms1 libxkbcommon-x11-0" in out

    monkeypatch.setenv("STUDIO_SKIP_LIB_CHECK", "1")
    assert dev.main(["run", "--data-dir", "x"]) == 0
    assert calls == [[str(tmp_path / ".venv" / "bin" / "python"), str(tmp_path / "main.py"), "--data-dir", "x"]]


@pytest.mark.skipif(not LINUX, reason="the check runs on Linux only")
def test_test_command_stops_before_the_gui_stage(tmp_path, monkeypatch, capsys):
    calls = _fake_venv(tmp_path, monkeypatch)
    monkeypatch.setenv("DISPLAY", ":0")  # the screenshot test would use xcb
    assert dev.main(["test"]) == 1
    assert calls == []
    out = capsys.readouterr().out
    assert "Qt cannot start" in out and "install" in out and "libxcb-keysyms" in out


@pytest.mark.parametrize("argv,script", [
    (["bench", "sprites", "--runs", "1"], ["benchmarks/bench_sprites.py", "--runs", "1"]),
    (["bench", "bench_gallery.py"], ["benchmarks/bench_gallery.py"]),
    (["shot", "out/main.png", "--tab", "saved"], ["tools/screenshot.py", "out/main.png", "--tab", "saved"]),
    (["shots", "gallery"], ["tools/shots_gallery.py"]),
    (["demo", "--docs"], ["tools/demo_real_comfy.py", "--docs"]),
])
def test_subcommands_run_their_script_with_the_project_venv(monkeypatch, argv, script):
    calls: list[list[str]] = []
    monkeypatch.setattr(dev, "ensure_env", lambda env, reqs, editable_extras: Path("/venv/bin/python"))
    monkeypatch.setattr(dev.subprocess, "call", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    assert dev.main(argv) == 0
    assert calls == [[str(Path("/venv/bin/python")), str(ROOT / script[0]), *script[1:]]]


def test_bundle_subcommand_starts_the_build_script(monkeypatch):
    calls: list[list[str]] = []
    monkeypatch.setattr(dev.subprocess, "call", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    assert dev.main(["bundle", "--smoke"]) == 0
    assert calls == [[sys.executable, str(ROOT / "packaging" / "build.py"), "--smoke"]]


def test_unknown_names_and_missing_arguments_are_refused(monkeypatch, capsys):
    monkeypatch.setattr(dev.subprocess, "call", lambda *a, **kw: pytest.fail("nothing may run"))
    assert dev.main(["bench", "nosuch"]) == 2
    assert "no benchmark called 'nosuch'; there are: " in capsys.readouterr().out
    assert dev.main(["shot"]) == 2
    assert dev.main(["frobnicate"]) == 2


def test_bench_list_through_the_real_script():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "dev.py"), "bench", "--list"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    assert names == sorted(p.stem.removeprefix("bench_") for p in (ROOT / "benchmarks").glob("bench_*.py"))
    assert "sprites" in names


def test_build_smoke_runs_with_the_bundle_interpreter(monkeypatch):
    """A bare python3 starts build.py; the smoke test needs the bundle venv's Pillow."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("studio_build_script", ROOT / "packaging" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    bundle_py = Path("/somewhere/.venv-bundle/bin/python")
    calls: list[list[str]] = []
    monkeypatch.setattr(build, "bundle_python", lambda: bundle_py)
    monkeypatch.setattr(build, "build", lambda py: Path("/dist/CloudAIArtStudio/CloudAIArtStudio"))
    monkeypatch.setattr(build.subprocess, "call", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    monkeypatch.setattr(sys, "argv", ["build.py", "--smoke"])
    assert build.main() == 0
    assert calls[0][:2] == [str(bundle_py), str(ROOT / "packaging" / "smoke.py")]


def test_venv_stamp_keeps_extras_so_run_and_test_do_not_reinstall(tmp_path, monkeypatch):
    env = tmp_path / "venv"
    dev.vpython(env).parent.mkdir(parents=True)
    dev.vpython(env).write_text("")
    pip_calls: list[list[str]] = []
    monkeypatch.setattr(dev.subprocess, "run", lambda cmd, **kw: pip_calls.append(cmd))
    dev.ensure_env(env, [], editable_extras="cloud,test")
    assert len(pip_calls) == 1 and pip_calls[0][-1].endswith("[cloud,test]")
    dev.ensure_env(env, [], editable_extras="cloud")  # what run asks for: already there
    dev.ensure_env(env, [], editable_extras="test,cloud")
    assert len(pip_calls) == 1
    dev.ensure_env(env, [], editable_extras="azure")  # more: installed together with what was there
    assert len(pip_calls) == 2 and pip_calls[1][-1].endswith("[azure,cloud,test]")


@pytest.mark.parametrize("closing,ok", [
    ("3 passed, 43 deselected in 1.11s", True),
    ("3 passed in 0.5s", True),
    ("2 passed, 1 skipped, 43 deselected in 1.0s", False),
    ("1 failed, 2 passed in 1.0s", False),
    ("3 skipped, 43 deselected in 0.81s", False),
    ("1 error in 0.3s", False),
    ("", False),
])
def test_unprivileged_stage_accepts_only_a_run_without_skips(closing, ok):
    assert dev.ran_all("...\n" + closing + "\n") is ok


@pytest.mark.skipif(not LINUX or not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="as root on Linux with setpriv (what CI has)")
def test_unprivileged_prefix_makes_read_only_folders_hold():
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from tests.file_permissions import modes_are_obeyed; "
             "print(modes_are_obeyed())")
    here = subprocess.run([sys.executable, "-c", probe, str(ROOT)], capture_output=True, text=True, check=True)
    assert here.stdout.strip() == "False"  # root: the tests would skip here
    ran = []
    for what, prefix in dev.unprivileged_prefixes():
        out = subprocess.run([*prefix, sys.executable, "-c", probe, str(ROOT)], capture_output=True, text=True)
        if out.returncode == 0:
            ran.append(what)
            assert out.stdout.strip() == "True", what
    assert ran, "no way to run without root's file-permission rights"
