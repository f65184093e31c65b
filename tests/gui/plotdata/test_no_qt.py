"""geogui.gui.plotdata is the Qt-free side of the plots: numpy and the run's records only."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_plotdata_imports_no_qt():
    code = textwrap.dedent("""
        import importlib, pkgutil, sys
        import geogui.gui.plotdata as plotdata
        for module in pkgutil.iter_modules(plotdata.__path__):
            importlib.import_module(f"geogui.gui.plotdata.{module.name}")
        qt = sorted(name for name in sys.modules if name.startswith(("PySide6", "pyqtgraph")))
        assert not qt, qt
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
