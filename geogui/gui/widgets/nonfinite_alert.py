"""The alert shown when training paused itself on a NaN or inf loss or gradient.

It names the step and the terms that went non-finite (the trainer's message), says which checkpoint
was kept, and offers three ways on: resume from that checkpoint with a lower learning rate (or, with
no checkpoint yet, start again with it), continue as is, or stop. Non-modal, like every dialog here:
the plots stay live behind it.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QMessageBox, QWidget

LOWER_FACTOR = 0.1  # what "lower learning rate" multiplies both learning rates by


class NonFiniteAlert(QMessageBox):
    """`chosen` carries "lower", "continue" or "stop"."""

    chosen = Signal(str)

    def __init__(self, message: str, step: int, good_checkpoint: int, learning_rate: float,
                 parent: QWidget | None = None) -> None:
        super().__init__(QMessageBox.Icon.Warning, "Training paused: non-finite loss",
                         f"Training paused at step {step}: the loss went non-finite.", parent=parent)
        kept = (f"The last good checkpoint (step {good_checkpoint}) is kept." if good_checkpoint
                else "No checkpoint was written before this, so there is none to go back to.")
        self.setInformativeText(f"{message}.\n\n{kept}")
        lower = learning_rate * LOWER_FACTOR
        self.lower_button = self.addButton(
            f"Resume from step {good_checkpoint} with learning rate {lower:g}" if good_checkpoint
            else f"Start again with learning rate {lower:g}", QMessageBox.ButtonRole.AcceptRole)
        self.continue_button = self.addButton("Continue as is", QMessageBox.ButtonRole.ActionRole)
        self.stop_button = self.addButton("Stop", QMessageBox.ButtonRole.RejectRole)
        self.setDefaultButton(self.lower_button)
        self.buttonClicked.connect(self._on_clicked)

    def _on_clicked(self, button) -> None:
        choice = {self.lower_button: "lower", self.continue_button: "continue"}.get(button, "stop")
        self.chosen.emit(choice)
