"""Window tests that need a real X server: keyboard focus, shortcuts while a text field has focus,
native dialogs and the folders they open in. Qt's offscreen platform has no focus model, so these
cannot pass (or fail) there.

`make test` runs this folder in a second pytest process, on Qt's xcb platform, inside a virtual X
server that pytest-xvfb starts (Xvfb must be installed). Anywhere else every test here is skipped
with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from geogui.gui.system_libraries import install_hint, missing_packages
from tests.gui.conftest import tiny, tiny_settings  # noqa: F401  (fixtures the tests here share)


def _why_not_here() -> str | None:
    """Why this process cannot reach a real X server, before the application is made: Qt aborts the
    process when its xcb plugin cannot load or connect, so the application then comes up offscreen
    and every test here is skipped with this reason."""
    if not sys.platform.startswith("linux"):
        return "the X server tests run on Linux"
    if not os.environ.get("DISPLAY"):
        return "no X server: install Xvfb (pytest-xvfb then starts one) or set DISPLAY"
    packages = missing_packages()
    if packages:
        return " ".join(install_hint(packages).split())
    return _xcb_refusal()


def _xcb_refusal() -> str | None:
    """Qt's own answer, asked in a child process (Qt aborts the process it cannot start in): None when
    the xcb platform starts on this display, else the first line Qt printed."""
    probe = "from PySide6.QtGui import QGuiApplication; QGuiApplication(['probe', '-platform', 'xcb'])"
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return "Qt's xcb platform did not start within 60 s"
    if done.returncode == 0:
        return None
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    return "Qt's xcb platform does not start here: " + (lines[0] if lines else f"exit status {done.returncode}")




NOT_HERE: str | None = None


@pytest.hookimpl(trylast=True)
def pytest_configure(config) -> None:
    # After pytest-xvfb's own configure, which starts the X server and sets DISPLAY.
    global NOT_HERE
    NOT_HERE = _why_not_here()
    if NOT_HERE:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


@pytest.fixture(autouse=True)
def _real_x_server(qapp):
    # The application's platform, not the environment: the suite's fixtures set the variable to
    # offscreen for the processes tests start, after the application was made.
    platform = qapp.platformName()
    if NOT_HERE or platform != "xcb":
        pytest.skip(NOT_HERE or f"needs Qt's xcb platform, not {platform!r}: run with QT_QPA_PLATFORM=xcb, "
                                "as make test does")


@pytest.fixture
def window(qtbot):
    """The app's window, shown and active (it holds the keyboard focus), over a run that would train
    for a long time unless stopped."""
    from geogui.gui.main_window import MainWindow

    window = MainWindow(tiny_settings(steps=100_000), persist=False, follow_ms=20)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitActive(window, timeout=5000)
    return window
