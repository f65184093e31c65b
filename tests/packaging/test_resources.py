"""The icon files: every size present and right, the .icns in step with the PNGs, and all of it found
by an installed wheel rather than the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile

import pytest
from PySide6.QtGui import QImage, QImageReader

from geogui.resources import ICNS_NAME, ICON_SIZES, icon_png, resource

from .conftest import ROOT

import icns  # noqa: E402  (packaging/icns.py, put on the path by conftest)


@pytest.mark.parametrize("size", ICON_SIZES)
def test_every_icon_size_is_a_png_of_that_size(size):
    image = QImage.fromData(icon_png(size), "PNG")
    assert not image.isNull()
    assert (image.width(), image.height()) == (size, size)
    assert image.hasAlphaChannel()  # the rounded corners are transparent
    assert image.pixelColor(0, 0).alpha() == 0 and image.pixelColor(size // 2, size // 2).alpha() == 255


def test_an_unknown_size_is_refused_by_name():
    with pytest.raises(ValueError, match="no 20px icon"):
        icon_png(20)


def test_icns_holds_the_committed_pngs_and_qt_reads_it():
    data = resource(ICNS_NAME).read_bytes()
    chunks = icns.read_icns(data)
    assert set(chunks) == set(icns.PNG_TYPES)
    for kind, png in chunks.items():
        assert png == icon_png(icns.PNG_TYPES[kind]), f"{kind!r} is not geogui-{icns.PNG_TYPES[kind]}.png"
    reader = QImageReader(str(resource(ICNS_NAME)))
    sizes = []
    for index in range(reader.imageCount()):
        assert reader.jumpToImage(index)
        sizes.append(reader.read().width())
    assert sorted(sizes) == sorted(icns.PNG_TYPES.values())


def test_icns_writer_checks_sizes_and_reader_checks_lengths():
    with pytest.raises(icns.IcnsError, match="needs a 32x32 PNG"):
        icns.build_icns({32: icon_png(16)})
    with pytest.raises(icns.IcnsError, match="no PNG of a size"):
        icns.build_icns({48: icon_png(48)})
    built = icns.build_icns({16: icon_png(16), 128: icon_png(128)})
    assert icns.read_icns(built) == {b"icp4": icon_png(16), b"ic07": icon_png(128)}
    with pytest.raises(icns.IcnsError, match="not an .icns"):
        icns.read_icns(built[:-1])


def test_an_installed_wheel_finds_its_resources(tmp_path):
    # Build the wheel from this checkout with the installed hatchling (no network), install it alone
    # into a folder, and import geogui from there: the source tree is not on the path.
    wheels, site = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(wheels),
                    str(ROOT)], check=True, capture_output=True, timeout=300)
    (wheel,) = wheels.glob("geogui-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "geogui/resources/geogui.icns" in names and "geogui/resources/icons/geogui-16.png" in names
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=300)

    probe = textwrap.dedent("""
        import sys
        from pathlib import Path
        from PySide6.QtGui import QGuiApplication
        import geogui
        from geogui.resources import ICON_SIZES, icon_png, resource
        from geogui.gui.app_icon import app_icon

        site = Path(sys.argv[1]).resolve()
        assert Path(geogui.__file__).resolve().is_relative_to(site), geogui.__file__
        assert Path(str(resource("geogui.icns"))).resolve().is_relative_to(site)
        assert all(icon_png(size).startswith(b"\\x89PNG") for size in ICON_SIZES)
        app = QGuiApplication([])
        print(sorted(size.width() for size in app_icon().availableSizes()))
    """)
    env = {**os.environ, "PYTHONPATH": str(site), "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-c", probe, str(site)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[0] == "[16, 32, 48, 64, 128, 256]"
