"""The `geogui` entry point, run as a user would: in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from PySide6.QtGui import QImage

from geogui import __version__


# A prelude for run_python: an import hook that notes, in `importers`, whether each import of torch
# happened on the main (GUI) thread.
WATCH_TORCH_IMPORTS = """
        import sys, threading
        from pathlib import Path

        importers = []
        class Watch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch":
                    importers.append(threading.current_thread() is threading.main_thread())
                return None
        sys.meta_path.insert(0, Watch())
"""


def run_python(code: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def test_version_needs_no_qt():
    result = run_python("""
        import sys
        from geogui.app import main
        try:
            main(["--version"])
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        assert not any(name.startswith("PySide6") for name in sys.modules), "Qt was imported"
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"geogui {__version__}"


def test_run_steps_needs_screenshot():
    result = run_python("from geogui.app import main; main(['--run-steps', '3'])")
    assert result.returncode == 2 and "go together" in result.stderr


def test_torch_is_never_imported_on_the_gui_thread(tiny_file):
    # An import hook notes which thread first imports torch: showing the window must not, and the
    # run must import it in the worker thread.
    result = run_python(WATCH_TORCH_IMPORTS + """

        from PySide6.QtWidgets import QApplication
        from geogui.gui.main_window import MainWindow
        from geogui.settings import load_settings_file

        app = QApplication([])
        settings = load_settings_file(Path(sys.argv[1]))
        settings.run.steps = 3
        window = MainWindow(settings, persist=False)
        window.show()
        app.processEvents()
        assert "torch" not in sys.modules, "torch imported before the run"
        window.start_run()
        window.session.ended.connect(app.quit)
        app.exec()
        assert importers == [False], importers
        window.close()
    """, str(tiny_file))
    assert result.returncode == 0, result.stderr


@pytest.mark.slow
def test_screenshot_flag_writes_a_png_and_exits_cleanly(tiny_file, tmp_path, private_dirs):
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "geogui", "--settings", str(tiny_file), "--run-steps", "3", "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert QImage(str(shot)).width() >= 800  # the whole window, not a widget
    assert "Destroyed while thread" not in result.stderr
    runs = list((private_dirs / "data" / "runs").iterdir())
    assert len(runs) == 1 and '"status": "stopped"' in (runs[0] / "meta.json").read_text()


def test_screenshot_with_invalid_settings_exits_with_the_reason(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"run": {"batch_size": 0}}')
    result = subprocess.run(
        [sys.executable, "-m", "geogui", "--settings", str(bad), "--run-steps", "3", "--screenshot",
         str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 2 and "run.batch_size" in result.stderr
