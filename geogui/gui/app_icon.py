"""The app icon as a QIcon, from the PNGs that ship inside the package."""

from __future__ import annotations

from PySide6.QtGui import QIcon, QPixmap

from geogui.resources import ICON_SIZES, icon_png

WINDOW_ICON_MAX = 256  # larger sizes only matter to the .icns; decoding them would slow the launch


def app_icon() -> QIcon:
    icon = QIcon()
    for size in ICON_SIZES:
        if size > WINDOW_ICON_MAX:
            continue
        pixmap = QPixmap()
        if not pixmap.loadFromData(icon_png(size), "PNG"):
            raise ValueError(f"the {size}px icon is not a readable PNG")
        icon.addPixmap(pixmap)
    return icon
