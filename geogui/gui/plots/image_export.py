"""Plots written as PNG or SVG."""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters

from geogui.gui.plots.svg_render import render_svg

IMAGE_SUFFIXES = (".png", ".svg")


class ExportTargetError(ValueError):
    """A plot image could not be written; the message names the file and the reason."""


def image_suffix(out: Path) -> str:
    """The suffix of `out` when it names an image format; ExportTargetError otherwise."""
    suffix = out.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise ExportTargetError(f"{out}: plots are written as .png or .svg, not {suffix or 'no suffix'!r}")
    return suffix


def write_image(item, target: Path, suffix: str) -> None:
    """Write a plot (or a tab's whole layout) to `target`; ExportTargetError with the reason if it fails."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "ab"):  # fails with the reason when the target is not writable
            pass
        if suffix == ".png":
            pg.exporters.ImageExporter(item).export(str(target))
        else:
            # Not pyqtgraph's SVGExporter: its clean-up cannot parse the closed paths ("... Z") that
            # recent Qt writes (pyqtgraph issue #3495), and what Qt writes alone needs the fixes in svg_render.
            render_svg(item, target)
    except OSError as exc:
        raise ExportTargetError(f"{target}: cannot write ({exc.strerror or exc})") from None
    if not target.is_file() or target.stat().st_size == 0:
        raise ExportTargetError(f"{target}: the image could not be written")


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())


def plot_file_stem(run: str, plot_name: str) -> str:
    """`<run>-<plot>`: a second plot exported from the same run does not take the first one's name."""
    return f"{run}-{slug(plot_name)}" if run else slug(plot_name)
