"""Draw the app icon's PNG sizes and its .icns from geogui/resources/icon.svg.

    python packaging/make_icons.py

Run it after editing the SVG and commit what it writes (geogui/resources/icons/geogui-<N>.png and
geogui/resources/geogui.icns). It needs only PySide6, which the app already depends on.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # rasterising needs no display

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from icns import build_icns  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESOURCES = ROOT / "geogui" / "resources"
SOURCE = RESOURCES / "icon.svg"
PNG_SIZES = (16, 32, 48, 64, 128, 256, 512, 1024)


def render_png(renderer: QSvgRenderer, size: int) -> bytes:
    image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter)
    painter.end()
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise RuntimeError(f"could not encode the {size}px PNG")
    return bytes(data)


def main() -> int:
    app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])  # noqa: F841 (QPainter needs one)
    renderer = QSvgRenderer(str(SOURCE))
    if not renderer.isValid():
        print(f"{SOURCE}: not a valid SVG", file=sys.stderr)
        return 1
    pngs = {size: render_png(renderer, size) for size in PNG_SIZES}
    icons = RESOURCES / "icons"
    icons.mkdir(exist_ok=True)
    for size, png in pngs.items():
        (icons / f"geogui-{size}.png").write_bytes(png)
    (RESOURCES / "geogui.icns").write_bytes(build_icns(pngs))
    total = sum(len(png) for png in pngs.values())
    print(f"wrote {len(pngs)} PNGs ({total / 1024:.0f} KiB) and geogui.icns under {RESOURCES.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
