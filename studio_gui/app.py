"""Start-up and shut-down of the desktop app.

The asyncio loop is qasync's, running on the Qt event loop. The app ends when the last
window closes: we then cancel what the GUI started, close the core (jobs, HTTP clients,
websockets, the index worker) and *return*, which stops the loop. Cleanup never hangs on
``aboutToQuit``: by then qasync has no running loop and async cleanup fails.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="cloud-ai-art-studio", description="Cloud AI Art Studio")
    ap.add_argument("--data-dir", type=Path, help="keep settings, images, cache and logs in this one folder (portable mode)")
    ap.add_argument("--quit-after", type=float, default=None, metavar="SECONDS",
                    help="close the window after this many seconds (headless checks)")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--screenshot", type=Path, default=None, help=argparse.SUPPRESS)
    args, _unknown = ap.parse_known_args(argv)
    return args


async def run(app, args: argparse.Namespace) -> int:
    from studio_core.app_core import StudioCore
    from studio_core.instance_lock import AlreadyRunning
    from studio_core.logs import configure_logging
    from studio_core.paths import AppPaths
    from studio_gui import errors
    from studio_gui.main_window import MainWindow

    paths = AppPaths.portable(args.data_dir) if args.data_dir else AppPaths.default()
    try:
        # The index opens below, beside the window build; the keys are read after the
        # window first paints (MainWindow.started), before anything asks for one.
        core = await StudioCore.open(paths, open_index=False, lock=True, preload_secrets=False)
    except AlreadyRunning as exc:
        return _already_running(app, paths, exc)
    except OSError as exc:
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.critical(None, "Cloud AI Art Studio",
                             f"The studio cannot use its data folder {paths.data}:\n{exc.strerror or exc}\n\n"
                             "Start it with --data-dir pointing at a writable folder.")
        return 2
    configure_logging(paths.log_file, redact=core.secrets.redact)
    errors.configure(redactor=core.secrets.redact, log_file=paths.log_file)
    for w in core.settings.warnings:
        log.warning("settings fallback: %s", w)

    from studio_gui import ui_state

    ui = await asyncio.to_thread(ui_state.load, paths.config / "ui_state.json")
    rc = 0
    closed = asyncio.Event()
    app.lastWindowClosed.connect(closed.set)
    window = MainWindow(core, ui=ui)
    # The Generate tab is what the user came for: its prompt and Generate are built before
    # the first paint, so the window appears once, usable, not as a placeholder repainted a
    # moment later (benchmarks/bench_startup.py measures exactly that). Its session grid,
    # which needs the gallery index, follows the paint (MainWindow.started opens the index).
    _ = window.generate_tab
    errors.install_excepthooks(lambda: window)
    from studio_gui import shutdown_signals

    stop_signals = shutdown_signals.install(app, window, closed)
    try:
        if os.environ.get("STUDIO_BENCH_STARTUP"):
            from studio_gui import startup_probe

            startup_probe.install_if_asked(window)  # reports first paint and "usable", then closes
        window.show()
        await window.first_paint_done()
        from studio_gui.single_instance import RaiseServer

        # After the paint: QtNetwork's import and types are ~10 ms the first screen does not
        # need. A second launch before this finds the lock and says the studio is running.
        RaiseServer(paths.data, window)  # a second launch on this data folder brings this window forward
        await window.started()
        log.info("main window up")
        if args.smoke:
            try:
                await window.smoke_check()
            except BaseException as exc:  # the exit code is the report
                log.error("smoke: FAILED: %r", exc)
                rc = 3
            window.close_without_asking("cancel")  # headless: nobody can answer the close dialog
            window.close()
        if args.screenshot:
            await asyncio.sleep(0.5)
            from studio_gui import screenshot_manifest

            await screenshot_manifest.save(window, args.screenshot)
        if args.quit_after is not None:
            loop = asyncio.get_running_loop()
            loop.call_later(args.quit_after, lambda: (window.close_without_asking(), window.close()))
        await closed.wait()
    finally:
        stop_signals()
        await window.tasks.cancel_all()
        # The user's answer to "close with work in flight?"; "keep" when nobody could be
        # asked (a signal during start-up): a kept queue loses nothing and pays nothing.
        await core.aclose(pending=window.close_choice or "keep")
        await asyncio.to_thread(ui_state.save, window.ui_state_path, window.ui)
    log.info("clean exit" if rc == 0 else f"exit {rc}")
    return rc


def _already_running(app, paths, exc) -> int:
    """A second launch on a data folder in use: bring the first window forward and leave
    (exit 0), or say why not (exit 1). Nothing was opened, so nothing needs closing."""
    from studio_gui.single_instance import ask_first_to_raise

    if ask_first_to_raise(paths.data):
        print(f"Cloud AI Art Studio is already running with {paths.data}; its window was brought forward.",
              file=sys.stderr)
        return 0
    print(exc.user_message, file=sys.stderr)
    if app.platformName() not in ("offscreen", "minimal"):
        from PySide6.QtWidgets import QMessageBox

        QMessageBox.information(None, "Cloud AI Art Studio", exc.user_message)
    return 1


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv if argv is None else argv)
    args = parse_args(argv[1:])
    if args.smoke:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication
    import qasync

    QApplication.setHighDpiScaleFactorRoundingPolicy(Qt.HighDpiScaleFactorRoundingPolicy.PassThrough)
    app = QApplication.instance() or QApplication(argv)
    app.setApplicationName("Cloud AI Art Studio")
    app.setOrganizationName("CloudAIArtStudio")
    app.setStyle("Fusion")
    app.setQuitOnLastWindowClosed(False)
    return asyncio.run(run(app, args), loop_factory=qasync.QEventLoop)
