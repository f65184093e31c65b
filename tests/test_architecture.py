"""The architecture as a test: the import contracts in pyproject.toml, and the size of the code's pieces."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "geogui"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def test_the_import_contracts_hold(capsys):
    """Layers point one way, only the window imports Qt, no cycles between siblings (pyproject.toml)."""
    pytest.importorskip("importlinter")
    from importlinter.application.use_cases import lint_imports
    from importlinter.configuration import configure

    configure()
    kept = lint_imports(config_filename=str(ROOT / "pyproject.toml"), cache_dir=None, no_logo=True)
    report = capsys.readouterr().out
    assert kept, report
    assert report.count(" KEPT") >= 3


def _modules() -> list[Path]:
    return sorted(path for path in PACKAGE.rglob("*.py") if "__pycache__" not in path.parts)


def test_no_module_is_longer_than_400_lines():
    long = {str(path.relative_to(ROOT)): len(path.read_text(encoding="utf-8").splitlines()) for path in _modules()}
    too_long = {name: lines for name, lines in long.items() if lines > MAX_MODULE_LINES}
    assert not too_long


def test_no_function_is_longer_than_60_lines():
    too_long = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not too_long
