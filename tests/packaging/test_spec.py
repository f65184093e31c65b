"""The PyInstaller spec, run with recording stand-ins for PyInstaller's build classes: what it would
build (names, bundle identifier, version, Info.plist, signing, exclusions) without building anything.
The real build is `make app` (packaging/build.sh), kept out of the default test run because it is slow."""

from __future__ import annotations

import json
import os
import plistlib
import subprocess
import sys
import textwrap
import types
from importlib import metadata
from pathlib import Path

import pytest

import geogui
from tests.gui.conftest import TINY

from .conftest import PACKAGING, ROOT

import app_identity  # noqa: E402  (packaging/app_identity.py, put on the path by conftest)

SPEC = PACKAGING / "geogui.spec"
USED_QT_MODULES = {"QtCore", "QtGui", "QtWidgets", "QtSvg", "QtOpenGL", "QtOpenGLWidgets", "QtTest"}


class Built:
    """Records each PyInstaller build step the spec asks for, by class name."""

    def __init__(self, unused_file: Path) -> None:
        self.steps: dict[str, types.SimpleNamespace] = {}
        self.unused_file = unused_file

    def step(self, kind: str):
        def record(*args, **kwargs):
            step = types.SimpleNamespace(args=args, kwargs=kwargs, pure=[], scripts=[], binaries=[], datas=[])
            if kind == "Analysis":
                used, unused = str(self.unused_file), str(self.unused_file)
                step.binaries = [("torch/lib/libtorch_cpu.so", used, "BINARY"),
                                 ("torch/bin/test_api", unused, "EXECUTABLE")]
                step.datas = [("torch/include/ATen/ATen.h", unused, "DATA"),
                              ("geogui/resources/geogui.icns", used, "DATA")]
            self.steps[kind] = step
            return step
        return record


def run_spec(monkeypatch, tmp_path, platform: str) -> Built:
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_data_files = lambda package: [(f"data-of-{package}", ".")]
    hooks.copy_metadata = lambda distribution: [(f"metadata-of-{distribution}", ".")]
    monkeypatch.setitem(sys.modules, "PyInstaller", types.ModuleType("PyInstaller"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils", types.ModuleType("PyInstaller.utils"))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(sys, "path", list(sys.path))
    unused = tmp_path / "some.so"
    unused.write_bytes(b"\0" * 1024)
    built = Built(unused)
    spec_globals = {"SPECPATH": str(PACKAGING), "__file__": str(SPEC)}
    for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE"):
        spec_globals[kind] = built.step(kind)
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), spec_globals)
    return built


def test_the_mac_app_takes_its_identity_from_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("GEOGUI_CODESIGN_IDENTITY", "Developer ID Application: Example (TEAM123456)")
    built = run_spec(monkeypatch, tmp_path, "darwin")
    meta = metadata.metadata("geogui")

    bundle = built.steps["BUNDLE"].kwargs
    assert bundle["name"] == f"{meta['Name']}.app" == "geogui.app"
    assert bundle["bundle_identifier"] == geogui.BUNDLE_IDENTIFIER
    assert bundle["version"] == meta["Version"] == geogui.__version__
    plist = bundle["info_plist"]
    assert plist["CFBundleShortVersionString"] == plist["CFBundleVersion"] == meta["Version"]
    assert plist["NSHighResolutionCapable"] is True
    assert tuple(map(int, plist["LSMinimumSystemVersion"].split("."))) >= (14, 0)
    assert plistlib.loads(plistlib.dumps(plist)) == plist  # every value is one a plist can hold
    assert Path(bundle["icon"]).name == "geogui.icns" and Path(bundle["icon"]).is_file()

    exe = built.steps["EXE"].kwargs
    assert exe["name"] == built.steps["COLLECT"].kwargs["name"] == meta["Name"]
    assert exe["target_arch"] == "arm64" and exe["console"] is False
    assert exe["codesign_identity"] == "Developer ID Application: Example (TEAM123456)"
    entitlements = plistlib.loads(Path(exe["entitlements_file"]).read_bytes())
    assert entitlements["com.apple.security.cs.allow-unsigned-executable-memory"] is True
    assert built.steps["COLLECT"].args[0] is built.steps["EXE"]


def test_the_linux_build_is_one_folder_without_a_bundle(monkeypatch, tmp_path):
    monkeypatch.delenv("GEOGUI_CODESIGN_IDENTITY", raising=False)
    built = run_spec(monkeypatch, tmp_path, "linux")
    assert "BUNDLE" not in built.steps
    exe = built.steps["EXE"].kwargs
    assert exe["exclude_binaries"] is True  # one folder, not one file
    assert exe["console"] is True and exe["codesign_identity"] is None and exe["icon"] is None
    assert built.steps["COLLECT"].kwargs["name"] == "geogui"


def test_the_spec_collects_resources_and_metadata_and_leaves_out_tests(monkeypatch, tmp_path):
    built = run_spec(monkeypatch, tmp_path, "linux")
    analysis = built.steps["Analysis"]
    entry = Path(analysis.args[0][0])
    assert entry == PACKAGING / "entry.py" and "freeze_support()" in entry.read_text()
    datas = analysis.kwargs["datas"]
    for wanted in ("data-of-geogui", "metadata-of-geogui", "metadata-of-torch"):
        assert (wanted, ".") in datas
    assert [name for name, *_ in analysis.binaries] == ["torch/lib/libtorch_cpu.so"]
    assert [name for name, *_ in analysis.datas] == ["geogui/resources/geogui.icns"]
    excluded = set(analysis.kwargs["excludes"])
    assert "PySide6.QtNetwork" in excluded and "PySide6.QtQuick" in excluded
    assert not {f"PySide6.{name}" for name in USED_QT_MODULES} & excluded


def test_metadata_is_that_of_this_checkout():
    # A stale editable install would build an app with an old version: the build reads the metadata.
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    identity = app_identity.app_identity()
    assert (identity.name, identity.version) == (project["name"], project["version"])


def test_a_real_run_imports_nothing_the_build_leaves_out(tmp_path):
    # The excluded modules are absent from a frozen app: a run must not need any of them.
    settings = tmp_path / "tiny.json"
    settings.write_text(json.dumps(TINY))
    code = textwrap.dedent("""
        import json, sys
        from geogui.app import main
        assert main(["--settings", sys.argv[1], "--run-steps", "3", "--screenshot", sys.argv[2]]) == 0
        print(json.dumps(sorted(sys.modules)))
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", code, str(settings), str(tmp_path / "shot.png")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert "torch" in imported and "PySide6.QtWidgets" in imported
    needed = [name for name in imported
              if any(name == gone or name.startswith(gone + ".") for gone in app_identity.EXCLUDED_MODULES)]
    assert needed == []
