"""The Rotation tab's three maps of one step, side by side: each presentation's rotation angles
(presentations × angles), how alike the presentations' rotations are (P × P, mean_i cos(θ_p,i − θ_q,i),
see geogui.gui.plotdata.rotation_similarity) and how alike their final hidden states are (P × P,
mean |cos(h_p, h_q)|, measured by the geometric step alone).

A map with nothing to show at the step keeps its rows and columns, greys every cell and says why in
a note over them (standard mode rotates nothing; only the geometric step measures the hidden
states; a run logged before the similarity was measured has none): never the last step that had a
value, which would read as this step's.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np
import pyqtgraph as pg

from geogui.gui.plotdata.cell_readout import MatrixCell, value_text
from geogui.gui.plotdata.rotation_series import RotationAt
from geogui.gui.plots.heatmap import FRACTION, SIGNED, ColorScale, MatrixHeatmap
from geogui.gui.plots.style import TEXT_COLOR
from geogui.settings import Mode

ANGLES_TITLE = "Rotation angles (rad)"
ROTATION_TITLE = "Rotation similarity"
HIDDEN_TITLE = "Hidden-state similarity"
ANGLE_SCALE = dataclasses.replace(SIGNED, label="rad")
# Like FRACTION, but from −1: angles of ±max_rotation can differ by more than a quarter turn.
ROTATION_SCALE = ColorScale(FRACTION.colormap, (-1.0, 1.0), label="mean cos Δθ")
HIDDEN_SCALE = dataclasses.replace(FRACTION, label="mean |cos h|")
NOTE_WIDTH_PX = 150  # a note wraps within this width, narrower than a map

NO_BATCHES = "no batches yet"
NO_ANGLES_IN_RUN = "this run has no rotation angles"
NO_ROTATION = "no rotation at this step (standard mode)"
GEOMETRIC_ONLY = "measured only in the geometric step"
NOT_RECORDED = "not in this run's records (logged before it was measured)"

ROTATION_MEANING = ("How alike two presentations' rotations are: tr(R_p^T R_q) / D = mean over the angles of "
                    "cos(θ_p,i − θ_q,i). 1: the same rotation; 0: a quarter turn apart; below 0: further.")
HIDDEN_MEANING = ("How alike two presentations' final hidden states are: the mean over tokens of |cos(h_p, h_q)|, "
                  "measured by the geometric step (the orthogonality term is its weight × the mean off the "
                  "diagonal). 1: the same direction; 0: orthogonal.")


class MapNote:
    """A line over a map's cells, in place of data (hidden while there is data)."""

    def __init__(self, heatmap: MatrixHeatmap) -> None:
        self.heatmap = heatmap
        self.item = pg.TextItem(color=TEXT_COLOR, fill=pg.mkBrush(255, 255, 255, 230), anchor=(0.5, 0.5))
        self.item.textItem.setTextWidth(NOTE_WIDTH_PX)
        self.item.setZValue(10)  # over the cells
        heatmap.addItem(self.item, ignoreBounds=True)
        self.item.setVisible(False)
        self.text = ""

    def show(self, text: str) -> None:
        """Say `text` over the middle of the cells; "" hides the note."""
        if text != self.text:
            self.text = text
            self.item.setText(text)
        rows, cols = len(self.heatmap.row_names), len(self.heatmap.col_names)
        self.item.setPos(max(cols, 1) / 2, max(rows, 1) / 2)
        self.item.setVisible(bool(text))


class RotationMaps:
    """The three maps; `show(at, mode)` draws one step's row of a run's `RotationSeries`."""

    def __init__(self) -> None:
        self.when = ""  # the step the maps show, in words: the readouts say it too
        self.angle_map = MatrixHeatmap(ANGLES_TITLE, ANGLE_SCALE, self._angle_readout, "presentation", "angle")
        self.rotation_map = MatrixHeatmap(ROTATION_TITLE, ROTATION_SCALE, self._readout("mean cos Δθ"),
                                          "presentation", "presentation")
        self.hidden_map = MatrixHeatmap(HIDDEN_TITLE, HIDDEN_SCALE, self._readout("mean |cos h|"), "presentation",
                                        "presentation")
        self.rotation_map.titleLabel.setToolTip(ROTATION_MEANING)
        self.hidden_map.titleLabel.setToolTip(HIDDEN_MEANING)
        self.notes = {heatmap: MapNote(heatmap) for heatmap in self.heatmaps}
        self.names: tuple[str, ...] = ()
        self.angle_names: tuple[str, ...] = ()

    @property
    def heatmaps(self) -> tuple[MatrixHeatmap, MatrixHeatmap, MatrixHeatmap]:
        return self.angle_map, self.rotation_map, self.hidden_map

    def add_to(self, layout: pg.GraphicsLayout, row: int) -> None:
        for col, heatmap in enumerate(self.heatmaps):
            layout.addItem(heatmap, row=row, col=col)

    def set_shape(self, names: Sequence[str], dimensions: int) -> None:
        """A run of these presentations (their names) and angles each: empty maps until `show`."""
        self.names = tuple(names)
        self.angle_names = tuple(f"d{i}" for i in range(dimensions))
        self.show(None, None)

    def set_angle_range(self, reach: float) -> None:
        """The angle map's colours span −reach..reach (0, the pale middle, is no rotation)."""
        reach = reach if math.isfinite(reach) and reach > 0 else 1.0
        heat = self.angle_map.heat
        if heat.scale.levels != (-reach, reach):
            heat.scale = dataclasses.replace(ANGLE_SCALE, levels=(-reach, reach))

    def show(self, at: RotationAt | None, mode: str | None, when: str = "") -> None:
        """One stored row (None: no batches yet), trained in `mode` (where it says why a map is empty)."""
        self.when = when
        p = len(self.names)
        angles = None if at is None else at.angles
        hidden = None if at is None else at.hidden_similarity
        if at is None:
            angle_note = hidden_note = NO_BATCHES
        else:
            angle_note = NO_ANGLES_IN_RUN if not self.angle_names else NO_ROTATION
            hidden_note = NOT_RECORDED if mode == Mode.GEOMETRIC.value else GEOMETRIC_ONLY
        similarity = None if at is None else at.rotation_similarity()
        self._show(self.angle_map, angles, (p, len(self.angle_names)), self.angle_names, angle_note)
        self._show(self.rotation_map, similarity, (p, p), self.names, angle_note)
        self._show(self.hidden_map, hidden, (p, p), self.names, hidden_note)

    def _show(self, heatmap: MatrixHeatmap, values: np.ndarray | None, shape: tuple[int, int],
              col_names: tuple[str, ...], note: str) -> None:
        if values is None or values.shape != shape:  # grey cells under the note, not a stale step's values
            heatmap.set_matrix(np.full(shape, np.nan, np.float32), self.names, col_names)
            self.notes[heatmap].show(note)
        else:
            heatmap.set_matrix(values, self.names, col_names)
            self.notes[heatmap].show("")

    # -- readouts ---------------------------------------------------------------------------------
    def _angle_readout(self, cell: MatrixCell) -> str:
        value = f"{cell.value:+.3f} rad" if math.isfinite(cell.value) else "no angle"
        return self._at(f"{cell.row_name} · {cell.col_name}: {value}")

    def _readout(self, quantity: str):
        def readout(cell: MatrixCell) -> str:
            return self._at(f"{cell.row_name} · {cell.col_name}: {quantity} {value_text(cell.value)}")
        return readout

    def _at(self, text: str) -> str:
        return f"{text} ({self.when})" if self.when else text
