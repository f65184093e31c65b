"""`geogui --run-steps N --screenshot FILE`: start a run, wait until N batches are plotted, grab the
whole window, then close it (which stops the run cleanly) so the app exits."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer

from geogui.gui.main_window import PREFERRED_SIZE, MainWindow


class ScreenshotRun(QObject):
    def __init__(self, window: MainWindow, steps: int, path: Path) -> None:
        super().__init__(window)
        self.window = window
        # The picture is of the window at its preferred size, whatever the screen (often a virtual one).
        window.resize(*PREFERRED_SIZE)
        self.steps = steps
        self.path = Path(path)
        self.error: str | None = None
        self._done = False

    def start(self) -> None:
        # Begin inside the event loop, so that an early failure's close() also ends app.exec().
        QTimer.singleShot(0, self._begin)

    def _begin(self) -> None:
        self.window.plots.redrawn.connect(self._on_redrawn)
        if not self.window.start_run():
            self._fail(f"cannot start a run: {'; '.join(self.window.panel.errors().values()) or 'invalid settings'}")
            return
        # Bound methods of this QObject, not lambdas: a lambda would run in the worker's thread.
        self.window.session.worker.failed.connect(self._fail)
        self.window.session.worker.finished.connect(self._on_finished)
        self.window.session.worker.metrics_ready.connect(self._on_metrics)

    def _on_metrics(self, _records: list) -> None:
        # Draw as soon as N batches are in, not at the redraw budget's next slot: the picture is the point.
        if len(self.window.plots.series) >= self.steps and not self._done:
            self.window.plots.redraw()

    def _on_redrawn(self, plotted: int) -> None:
        if plotted >= self.steps:
            self._take()

    def _on_finished(self, _finished: object) -> None:
        # A run that ends before the timer drew its last batches: draw now, which takes the picture.
        self.window.plots.redraw()

    def _take(self) -> None:
        if self._done:
            return
        self._done = True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.window.grab().save(str(self.path)):
            self.error = f"could not write {self.path}"
        self.window.close()

    def _fail(self, message: str) -> None:
        self.error = message
        self._done = True
        self.window.close()
