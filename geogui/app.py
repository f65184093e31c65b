"""`geogui`: launch the app. `--version` needs no Qt; `--run-steps N --screenshot FILE` runs N batches,
saves a picture of the whole window and exits (used for the README image and a smoke test)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from geogui import __version__
from geogui.gui import system_libraries


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="geogui", description="Train a Mixture-of-Experts LM with Geometric "
                                     "Constrained Learning and watch what it costs, live.")
    parser.add_argument("--version", action="version", version=f"geogui {__version__}")
    parser.add_argument("--settings", type=Path, metavar="FILE",
                        help="start from this settings JSON file (it is not overwritten; "
                             "the stored settings are left alone)")
    parser.add_argument("--run-steps", type=int, metavar="N",
                        help="start a run at once with at least N steps (needs --screenshot)")
    parser.add_argument("--screenshot", type=Path, metavar="FILE.png",
                        help="after N batches are plotted, save the window to FILE.png, stop and exit")
    args = parser.parse_args(argv)
    if (args.run_steps is None) != (args.screenshot is None):
        parser.error("--run-steps and --screenshot go together")
    if args.run_steps is not None and args.run_steps < 1:
        parser.error("--run-steps must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)  # --version exits here, before anything imports Qt
    missing = system_libraries.check()
    if missing:  # instead of Qt's abort ("Could not load the Qt platform plugin xcb")
        print(f"geogui: {missing}", file=sys.stderr)
        return 3
    # Qt, pyqtgraph and pydantic load only now; torch loads later, in the training thread only.
    from PySide6.QtWidgets import QApplication

    from geogui.settings import store as settings_store
    from geogui.gui.app_icon import app_icon
    from geogui.gui.main_window import MainWindow
    from geogui.settings import SettingsError, load_settings_file

    if args.settings is not None:
        try:
            settings, notice = load_settings_file(args.settings), None
        except SettingsError as exc:
            print(f"geogui: {exc}", file=sys.stderr)
            return 2
    else:
        loaded = settings_store.load_settings()
        settings, notice = loaded.settings, loaded.notice

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("geogui")
    app.setApplicationVersion(__version__)
    app.setWindowIcon(app_icon())  # dialogs and, off macOS, the taskbar; an .app's Dock icon is its .icns

    if args.screenshot is None:
        window = MainWindow(settings, notice, persist=args.settings is None)
        window.show()
        return app.exec()

    from geogui.gui.screenshot import ScreenshotRun

    settings.run.steps = max(settings.run.steps, args.run_steps)
    window = MainWindow(settings, notice, persist=False)
    job = ScreenshotRun(window, args.run_steps, args.screenshot)
    window.show()
    job.start()
    app.exec()
    if job.error:
        print(f"geogui: {job.error}", file=sys.stderr)
        return 1
    print(f"saved {args.screenshot}")
    return 0
