"""The TensorBoard heatmaps' pictures: the app's colours without its plotting library, cells as
squares, and a PNG that image readers decode to the same pixels."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest

from geogui.rundir.export.heatmap_png import (CELL_PX, FRACTION, NAN_RGB, UTILIZATION, cell_colours, heatmap_rgb,
                                              png_bytes)


@pytest.mark.parametrize("scale", [UTILIZATION, FRACTION], ids=lambda scale: scale.name)
def test_the_colours_are_the_app_heatmaps_own(scale):
    """Cell by cell against the app's own colouring (its colour map's table, its levels)."""
    from geogui.gui.plots import heatmap_image

    app_scale = heatmap_image.UTILIZATION if scale is UTILIZATION else heatmap_image.FRACTION
    assert app_scale.colormap == scale.name and app_scale.levels == (scale.low, scale.high)
    table = app_scale.color_map().getLookupTable(nPts=heatmap_image.TABLE_SIZE, alpha=True)
    values = np.linspace(scale.low - 0.5, scale.high + 0.5, 400, dtype=np.float32).reshape(20, 20)
    values[3, 4] = np.nan
    ours = cell_colours(values, scale).astype(int)
    app = heatmap_image.colored(values, app_scale.levels, table)[..., :3].astype(int)
    assert np.abs(ours - app).max() <= 5  # the maps are sampled at 33 stops and interpolated
    assert tuple(ours[3, 4]) == NAN_RGB == tuple(app[3, 4])


def test_levels_clip_and_each_cell_is_a_square_block():
    values = np.array([[0.0, 1.0, 2.0], [-3.0, 9.0, np.nan]])
    colours = cell_colours(values, UTILIZATION)
    table = UTILIZATION.table()
    assert (colours[0, 0] == table[0]).all() and (colours[0, 2] == table[-1]).all()
    assert (colours[1, 0] == table[0]).all() and (colours[1, 1] == table[-1]).all()  # beyond the levels: the ends
    assert (colours[0, 1] == table[128]).all()  # the fair share: the pale middle
    assert colours[0, 1].min() > 220 and colours[0, 0][2] > colours[0, 0][0]  # pale; 0 is blue
    rgb = heatmap_rgb(values, UTILIZATION)
    assert rgb.shape == (2 * CELL_PX, 3 * CELL_PX, 3) and rgb.dtype == np.uint8
    for row in range(2):
        for col in range(3):
            block = rgb[row * CELL_PX:(row + 1) * CELL_PX, col * CELL_PX:(col + 1) * CELL_PX]
            assert (block == colours[row, col]).all()


def test_the_png_decodes_to_the_same_pixels():
    image_module = pytest.importorskip("PIL.Image")  # pillow comes with the tensorboard extra
    rgb = heatmap_rgb(np.random.default_rng(0).random((4, 8)) * 2, UTILIZATION)
    data = png_bytes(rgb)
    decoded = image_module.open(io.BytesIO(data))
    assert decoded.mode == "RGB" and decoded.size == (8 * CELL_PX, 4 * CELL_PX)
    assert np.array_equal(np.asarray(decoded), rgb)
    assert len(data) < 2_000  # flat blocks compress: an image a run writes a hundred times stays small


def test_the_png_is_well_formed_without_an_image_library():
    rgb = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    data = png_bytes(rgb)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(data):
        length = int.from_bytes(data[at:at + 4], "big")
        kind, body = data[at + 4:at + 8], data[at + 8:at + 8 + length]
        assert int.from_bytes(data[at + 8 + length:at + 12 + length], "big") == zlib.crc32(kind + body)
        chunks.append((kind, body))
        at += 12 + length
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    assert chunks[0][1][:8] == (3).to_bytes(4, "big") + (2).to_bytes(4, "big")  # width, height
    rows = zlib.decompress(chunks[1][1])
    assert rows == b"".join(b"\x00" + rgb[row].tobytes() for row in range(2))  # filter 0, then the row
    with pytest.raises(ValueError):
        png_bytes(np.zeros((2, 2, 4), np.uint8))
