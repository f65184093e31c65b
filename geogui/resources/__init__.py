"""The app's own files (the icon in every size), read through importlib.resources so that they are
found alike in a source checkout, an installed wheel and a frozen app. No Qt here: callers turn the
bytes into whatever they draw with.

The PNGs and the .icns are drawn from icon.svg by packaging/make_icons.py.
"""

from __future__ import annotations

from importlib.resources import files
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importlib.resources.abc is new in Python 3.11
    from importlib.resources.abc import Traversable

ICON_SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)  # the PNGs under icons/
ICNS_NAME = "geogui.icns"


def resource(name: str) -> Traversable:
    """One of this package's files, e.g. resource("icon.svg")."""
    return files(__name__).joinpath(name)


def icon_png(size: int) -> bytes:
    """The icon as a size x size PNG."""
    if size not in ICON_SIZES:
        raise ValueError(f"no {size}px icon; sizes are {', '.join(map(str, ICON_SIZES))}")
    return resource("icons").joinpath(f"geogui-{size}.png").read_bytes()
