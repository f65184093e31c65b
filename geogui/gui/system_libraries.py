"""The X11 libraries Qt's `xcb` platform plugin needs on Linux and that pip cannot install.

Without them the first launch aborts with "Could not load the Qt platform plugin xcb … even though
it was found". PySide6's wheels bring Qt itself but not these system libraries, which a minimal or
fresh Debian/Ubuntu desktop may lack. `python -m geogui.gui.system_libraries` (run by `make run`)
checks and prints the one line that installs what is missing; the app checks too before it
starts, so that the message comes instead of Qt's abort.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
from typing import Callable

# Library (as ctypes finds it) -> Debian/Ubuntu package.
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
}


def needs_xcb(platform: str = sys.platform, environ: dict[str, str] | None = None) -> bool:
    """Whether Qt will load its xcb plugin: on Linux, unless another platform plugin is chosen
    (offscreen, wayland) or there is no X display to reach."""
    environ = os.environ if environ is None else environ
    if not platform.startswith("linux"):
        return False
    chosen = environ.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return False
    return bool(environ.get("DISPLAY")) or chosen.startswith("xcb")


def missing_packages(find: Callable[[str], str | None] = ctypes.util.find_library) -> list[str]:
    return [package for library, package in XCB_LIBRARIES.items() if find(library) is None]


def install_hint(packages: list[str]) -> str:
    return ("Qt needs system libraries that are not installed: " + ", ".join(packages) + ".\n"
            "Install them with:\n    sudo apt-get install -y " + " ".join(packages))


def check() -> str | None:
    """The message to show when the window cannot start for want of system libraries, else None."""
    if not needs_xcb():
        return None
    packages = missing_packages()
    return install_hint(packages) if packages else None


def main() -> int:
    message = check()
    if message:
        print(message, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
