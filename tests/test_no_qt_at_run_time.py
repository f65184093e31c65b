import subprocess
import sys


def test_engine_and_cli_import_no_qt():
    code = (
        "import sys, pkgutil, importlib, geogui.engine, geogui.rundir.driver\n"
        "import geogui.cli.train, geogui.cli.export, geogui.cli.control, geogui.cli.torchrun\n"
        "for m in pkgutil.iter_modules(geogui.engine.__path__): importlib.import_module('geogui.engine.' + m.name)\n"
        "qt = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6'))\n"
        "assert 'geogui.engine.trainer' in sys.modules\n"
        "print(qt)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
