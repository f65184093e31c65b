"""Small widgets above the plots."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QWidget

from geogui.gui.plotdata.smoothing import DEFAULT_WEIGHT, MAX_WEIGHT

_STEPS = 1000  # slider positions per unit of weight: 0.000 .. 0.999


class SmoothingSlider(QWidget):
    """The smoothing weight, 0 (off) to 0.999, as a slider with its value beside it."""

    valueChanged = Signal(float)  # noqa: N815 - Qt's naming, like the widgets it stands in for

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._slider = QSlider(Qt.Orientation.Horizontal)
        self._slider.setRange(0, round(MAX_WEIGHT * _STEPS))
        self._slider.setSingleStep(10)
        self._slider.setPageStep(100)
        self._slider.setFixedWidth(140)
        self._slider.setValue(round(DEFAULT_WEIGHT * _STEPS))
        self._label = QLabel()
        self._label.setMinimumWidth(36)
        tip = ("Loss smoothing: TensorBoard's debiased exponential moving average, restarted at every mode "
               "switch. 0 = off; closer to 1 = smoother. The raw loss stays drawn, faint, underneath.")
        self.setToolTip(tip)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self._slider)
        row.addWidget(self._label)
        self._slider.valueChanged.connect(self._on_slider)
        self._show_value()

    def value(self) -> float:
        return self._slider.value() / _STEPS

    def setValue(self, value: float) -> None:  # noqa: N802
        self._slider.setValue(round(value * _STEPS))

    def _show_value(self) -> None:
        value = self.value()
        self._label.setText("off" if value == 0 else f"{value:.3f}")

    def _on_slider(self) -> None:
        self._show_value()
        self.valueChanged.emit(self.value())
