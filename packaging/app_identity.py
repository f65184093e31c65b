"""What the PyInstaller spec builds, decided in plain Python so that it can be tested without building:
the app's identity (from the installed package, never typed twice), its Info.plist, and what is left
out of the bundle."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch
from importlib import metadata

DISTRIBUTION = "geogui"
MINIMUM_MACOS = "14.0"  # recent torch wheels for macOS need macOS 14 (and are arm64 only)

# Qt modules the app never imports (it uses QtCore, QtGui, QtWidgets and QtSvg; pyqtgraph adds
# QtOpenGL, QtOpenGLWidgets and QtTest). Leaving them out also leaves out their Qt libraries and plugins.
UNUSED_QT_MODULES = [
    f"PySide6.{name}" for name in (
        "Qt3DAnimation", "Qt3DCore", "Qt3DExtras", "Qt3DInput", "Qt3DLogic", "Qt3DRender", "QtBluetooth",
        "QtCharts", "QtConcurrent", "QtDataVisualization", "QtDBus", "QtDesigner", "QtGraphs", "QtHelp",
        "QtHttpServer", "QtLocation", "QtMultimedia", "QtMultimediaWidgets", "QtNetwork", "QtNetworkAuth",
        "QtNfc", "QtPdf", "QtPdfWidgets", "QtPositioning", "QtPrintSupport", "QtQml", "QtQuick", "QtQuick3D",
        "QtQuickControls2", "QtQuickTest", "QtQuickWidgets", "QtRemoteObjects", "QtScxml", "QtSensors",
        "QtSerialBus", "QtSerialPort", "QtSpatialAudio", "QtSql", "QtStateMachine", "QtTextToSpeech",
        "QtUiTools", "QtWebChannel", "QtWebEngineCore", "QtWebEngineQuick", "QtWebEngineWidgets",
        "QtWebSockets", "QtWebView", "QtXml",
    )
]
# Python packages that are importable in a development environment but that the app does not use.
# (torch.testing._internal stays: torch.utils.checkpoint imports from it when torch is imported.)
UNUSED_PACKAGES = [
    "tkinter", "matplotlib", "IPython", "jupyter_client", "ipykernel", "pytest", "pytestqt", "pandas",
    "scipy", "PIL", "PyQt5", "PyQt6", "PySide2", "OpenGL", "pyqtgraph.opengl", "pyqtgraph.jupyter",
    "torch.utils.benchmark",
]
EXCLUDED_MODULES = UNUSED_QT_MODULES + UNUSED_PACKAGES

# Files that torch's wheel carries for its own tests and for building extensions against it. Paths are
# as they land in the bundle; a leaner bundle without them still imports torch and trains.
UNUSED_FILES = [
    "torch/test/*",
    "torch/include/*",
    "torch/share/*",
    "torch/bin/*test*", "torch/bin/*Test*", "torch/bin/protoc*", "torch/bin/*.pt", "torch/bin/*.ptl",
    "torch/bin/upgrader_models/*",
    "torch/lib/*test*", "torch/lib/libaoti_custom_ops*", "torch/lib/libbackend_with_compiler*",
    "torch/lib/*.a",
    "*.pyi", "*.h", "*.hpp", "*.cuh", "*.cmake",
]


@dataclass(frozen=True)
class AppIdentity:
    name: str  # the executable and the build folder
    version: str
    bundle_identifier: str

    @property
    def bundle_name(self) -> str:
        return f"{self.name}.app"


def app_identity() -> AppIdentity:
    """From the installed package: its metadata's name and version, and geogui.BUNDLE_IDENTIFIER."""
    import geogui

    meta = metadata.metadata(DISTRIBUTION)
    return AppIdentity(name=meta["Name"], version=meta["Version"], bundle_identifier=geogui.BUNDLE_IDENTIFIER)


def info_plist(identity: AppIdentity) -> dict[str, object]:
    """Info.plist keys PyInstaller does not set itself (it sets the bundle id, name and icon file)."""
    return {
        "CFBundleDisplayName": identity.name,
        "CFBundleShortVersionString": identity.version,
        "CFBundleVersion": identity.version,
        "LSMinimumSystemVersion": MINIMUM_MACOS,
        "LSApplicationCategoryType": "public.app-category.developer-tools",
        "NSHighResolutionCapable": True,
        # Follow the system's light/dark appearance (Qt draws both).
        "NSRequiresAquaSystemAppearance": False,
        "NSHumanReadableCopyright": "MIT License",
    }


def is_unused_file(destination: str) -> bool:
    """Whether a file PyInstaller collected (by its path in the bundle) belongs to UNUSED_FILES."""
    path = destination.replace("\\", "/")
    return any(fnmatch(path, pattern) for pattern in UNUSED_FILES)
