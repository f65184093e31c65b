"""A small matrix (layers x experts, presentations x presentations) as a heatmap picture: numpy only,
no plotting library, so the TensorBoard export draws it wherever the export runs.

The colours are the app's heatmaps' own (`gui/plots/heatmap_image.py`, which cannot be imported
here: it is Qt): the same maps sampled at 33 stops from pyqtgraph's tables and interpolated back to
256 colours, at the same fixed levels, with the same grey for a cell without a value. So a cell
of a TensorBoard image is the colour the app draws that cell in:
- `UTILIZATION`: CET-D1 over 0..2, deep blue for a dead expert (0), pale at the fair share (1), red
  for twice it;
- `FRACTION`: viridis over 0..1 (the |cos| similarity), dark to bright.
Each cell is a square of `CELL_PX` pixels, so that TensorBoard's image card shows the cells, not a
blur of 4 x 8 pixels. `png_bytes` encodes the picture (8-bit RGB, zlib).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CELL_PX = 24
TABLE_SIZE = 256
NAN_RGB = (0x8C, 0x8C, 0x8C)  # the app's NAN_COLOR

_CET_D1 = ((33, 81, 219), (61, 89, 220), (81, 97, 222), (97, 107, 224), (111, 116, 225), (124, 126, 227),
           (137, 135, 228), (148, 145, 230), (159, 155, 231), (170, 166, 233), (181, 176, 234), (191, 186, 235),
           (201, 196, 236), (210, 207, 238), (220, 218, 238), (229, 227, 238), (237, 231, 233), (241, 225, 222),
           (242, 214, 207), (241, 201, 192), (240, 189, 177), (239, 177, 162), (237, 164, 147), (234, 152, 132),
           (231, 139, 118), (227, 127, 104), (223, 114, 90), (219, 100, 76), (214, 87, 62), (209, 72, 49),
           (203, 56, 35), (197, 37, 21), (192, 2, 6))
_VIRIDIS = ((68, 1, 84), (70, 12, 95), (72, 23, 105), (72, 34, 115), (71, 44, 122), (69, 54, 129),
            (66, 63, 133), (62, 72, 137), (59, 81, 139), (55, 90, 140), (51, 98, 141), (47, 106, 142),
            (44, 113, 142), (41, 121, 142), (38, 129, 142), (35, 136, 142), (33, 144, 140), (31, 151, 139),
            (31, 159, 136), (33, 166, 133), (39, 173, 128), (49, 181, 122), (61, 188, 115), (76, 194, 107),
            (92, 200, 98), (110, 206, 87), (129, 211, 76), (149, 216, 63), (170, 220, 49), (192, 223, 36),
            (213, 226, 25), (234, 229, 26), (253, 231, 37))


@dataclass(frozen=True)
class ColourScale:
    """Colour stops (RGB, evenly spaced) over the fixed levels low..high."""

    stops: tuple[tuple[int, int, int], ...]
    low: float
    high: float
    name: str

    def table(self) -> np.ndarray:
        """(TABLE_SIZE, 3) uint8: the stops interpolated linearly (a copy: callers may write to it)."""
        return _table(self.stops).copy()


@lru_cache(maxsize=8)
def _table(stops: tuple[tuple[int, int, int], ...]) -> np.ndarray:
    colours = np.asarray(stops, dtype=np.float64)
    at, knots = np.linspace(0.0, 1.0, TABLE_SIZE), np.linspace(0.0, 1.0, len(colours))
    return np.stack([np.interp(at, knots, colours[:, channel]) for channel in range(3)], axis=1).round().astype(np.uint8)


UTILIZATION = ColourScale(_CET_D1, 0.0, 2.0, "CET-D1")
FRACTION = ColourScale(_VIRIDIS, 0.0, 1.0, "viridis")


def cell_colours(values: np.ndarray, scale: ColourScale) -> np.ndarray:
    """(rows, cols) values -> (rows, cols, 3) uint8, indexed as the app's heatmaps index their table:
    `low` and below the first colour, `high` and above the last, NaN grey."""
    values = np.asarray(values, dtype=np.float32)
    table = _table(scale.stops)
    scaled = (values - np.float32(scale.low)) * np.float32(len(table) / (scale.high - scale.low))
    missing = np.isnan(scaled)
    index = np.clip(np.where(missing, 0, scaled), 0, len(table) - 1).astype(np.intp)
    rgb = table[index]
    rgb[missing] = NAN_RGB
    return rgb


def heatmap_rgb(values: np.ndarray, scale: ColourScale, cell_px: int = CELL_PX) -> np.ndarray:
    """(rows, cols) values -> (rows * cell_px, cols * cell_px, 3) uint8, HWC: row 0 at the top."""
    colours = cell_colours(values, scale)
    return np.ascontiguousarray(np.repeat(np.repeat(colours, cell_px, axis=0), cell_px, axis=1))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(rgb: np.ndarray) -> bytes:
    """An (H, W, 3) uint8 picture as a PNG file's bytes (8-bit truecolour, no filter)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    height, width, channels = rgb.shape
    if channels != 3:
        raise ValueError(f"an RGB picture has 3 channels, not {channels}")
    rows = np.concatenate([np.zeros((height, 1), np.uint8), rgb.reshape(height, width * 3)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, deflate, no filter/interlace
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9))
            + _chunk(b"IEND", b""))
