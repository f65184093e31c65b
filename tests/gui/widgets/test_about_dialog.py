"""Help → About: versions, device, and the two folders with buttons that open them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import pytest
from PySide6.QtCore import QObject, QUrl, Slot, qVersion
from PySide6.QtGui import QDesktopServices

from geogui import __version__, paths
from geogui.gui.main_window import MainWindow

from tests.gui.conftest import tiny_settings

TIMEOUT_MS = 60_000


class UrlRecorder(QObject):
    """Stands in for the file manager: QDesktopServices hands it every file:// URL."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


@pytest.fixture
def opened_urls():
    recorder = UrlRecorder()
    QDesktopServices.setUrlHandler("file", recorder, "open")
    yield recorder.urls
    QDesktopServices.unsetUrlHandler("file")


def test_about_shows_versions_paths_and_opens_each_folder(qtbot, opened_urls):
    window = MainWindow(tiny_settings(), persist=False)
    qtbot.addWidget(window)
    window.show()
    window.show_about()
    box = window.about_box
    assert box.isVisible()  # open() returned: the event loop (and a run plotting) goes on
    text = box.text()
    assert f"geogui {__version__}" in text
    assert f"torch: {metadata.version('torch')}" in text
    assert f"Qt: {qVersion()}" in text
    assert "Device: cpu requested; chosen when a run starts" in text
    assert f"Settings folder: {paths.config_dir()}" in text and f"Runs folder: {paths.runs_dir()}" in text

    box.open_buttons["Runs folder"].click()
    box.open_buttons["Settings folder"].click()
    assert [Path(url.toLocalFile()) for url in opened_urls] == [paths.runs_dir(), paths.config_dir()]
    assert window.windowIcon().availableSizes(), "the window has no icon"
    box.close()


def test_about_names_the_device_a_run_fell_back_from(qtbot):
    # mps is never available on a Linux CI machine: the run falls back to the CPU and About says so.
    window = MainWindow(tiny_settings(steps=2).model_copy(
        update={"device": tiny_settings().device.model_copy(update={"device": "mps"})}), persist=False)
    qtbot.addWidget(window)
    window.show()
    if sys.platform == "darwin":
        pytest.skip("mps may be available on macOS")
    assert window.start_run()
    qtbot.waitUntil(lambda: window.session is None, timeout=TIMEOUT_MS)
    window.show_about()
    assert "Device: cpu (requested mps): mps is not available on this machine; using CPU" in window.about_box.text()
    window.about_box.close()


def test_opening_about_does_not_import_torch():
    code = textwrap.dedent("""
        import sys
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from geogui.gui.main_window import MainWindow
        from geogui.settings import Settings

        app = QApplication([])
        window = MainWindow(Settings(), persist=False)
        seen = {}

        def open_about():  # from the event loop, as a menu click would
            try:
                window.show_about()
                app.processEvents()
                seen["text"] = window.about_box.text()
                seen["torch_loaded"] = "torch" in sys.modules
            finally:
                window.close()
                app.quit()

        window.show()
        QTimer.singleShot(0, open_about)
        app.exec()
        assert seen.get("torch_loaded") is False, "About imported torch"
        print(seen["text"])
        # The window's C++ side goes before interpreter teardown: left to the garbage collector, a
        # MainWindow outliving its event loop can crash PySide6 at exit (with or without About).
        import shiboken6
        shiboken6.delete(window)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"torch: {metadata.version('torch')}" in result.stdout
