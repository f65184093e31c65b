"""The status bar: the run shown (and its status when it is another process's), device (and any
fallback), how the step runs (compiled, and in which precision, when either was asked for),
progress with ETA, throughput and memory."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QProgressBar, QSizePolicy, QStatusBar, QWidget

from geogui.engine.metrics import BatchRecord, RunEvent, RunStarted

NOTICE_MS = 15_000
WARNING_STYLE = "color: #b26a00; font-weight: bold;"
# The trainer's reports on how the step runs (see geogui.engine.step_options).
STEP_OPTION_EVENTS = ("step_compiled", "step_recompiled", "compile_failed", "precision_fallback")


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class NoticeLabel(QLabel):
    """The latest notice, in the room the permanent widgets leave: a long one is elided in the middle
    (its start and its end stay readable) and shown whole as the tooltip, instead of being cut off."""

    def __init__(self) -> None:
        super().__init__("")
        self.full_text = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setTextFormat(Qt.TextFormat.PlainText)

    def show_text(self, text: str) -> None:
        self.full_text = text
        self._elide()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self.full_text, Qt.TextElideMode.ElideMiddle, max(self.width(), 1))
        self.setText(shown)
        self.setToolTip(self.full_text if shown != self.full_text else "")


class RunStatusBar(QStatusBar):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notice = NoticeLabel()
        self.addWidget(self.notice, 1)
        self._notice_timer = QTimer(self)
        self._notice_timer.setSingleShot(True)
        self._notice_timer.timeout.connect(lambda: self.notice.show_text(""))
        self._run_name, self._run_status, self._following = "", None, False
        self.run_state = QLabel("")
        self.run_state.setToolTip("The run shown in the plots")
        self.follow_state = QLabel("")  # only while following a run another process writes
        self.follow_state.setVisible(False)
        self.device = QLabel("device: –")
        self.step_options = QLabel("")  # only once the trainer reports a compilation or a precision fallback
        self.step_options.setVisible(False)
        self.progress_text = QLabel("step – / –")
        self.eta = QLabel("ETA –")
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(180)
        self.progress.setTextVisible(True)
        self.throughput = QLabel("– tok/s")
        self.memory = QLabel("mem –")
        for widget in (self.run_state, self.follow_state, self.device, self.step_options, self.progress_text,
                       self.progress, self.eta, self.throughput, self.memory):
            self.addPermanentWidget(widget)
        self._total_steps = 0
        self._start_step = 0
        self._step_parts: dict[str, str] = {}  # event kind -> its text in `step_options`
        self._step_notes: list[str] = []  # every such event's message, for the tooltip

    def reset(self) -> None:
        self.device.setText("device: …")
        self.device.setStyleSheet("")
        self.device.setToolTip("")
        self.progress_text.setText("step – / –")
        self.eta.setText("ETA –")
        self.progress.setValue(0)
        self.throughput.setText("– tok/s")
        self.memory.setText("mem –")
        self._step_parts, self._step_notes = {}, []
        self._show_step_options()

    def show_started(self, started: RunStarted) -> None:
        self._total_steps = started.total_steps
        self._start_step = started.start_step
        self.progress.setRange(0, started.total_steps)
        self.progress.setValue(started.start_step)
        self.progress_text.setText(f"step {started.start_step} / {started.total_steps}")
        self.device.setText(f"device: {started.device}")
        self.device.setToolTip(f"requested: {started.requested_device}; {started.parameters:,} parameters; "
                               f"data: {started.data_source}")
        # "auto" resolving to CPU is a choice, not a fallback; an explicit request that was not met is.
        if started.requested_device not in ("auto", started.device):
            self._warn_device(f"device: {started.device} (requested {started.requested_device})")

    def show_run_state(self, name: str, status: str | None = None) -> None:
        """Which run the plots show; `status` for a run the app is not training itself."""
        self._run_name, self._run_status = name, status
        self._show_run_state()

    def _show_run_state(self) -> None:
        # One state at a time: while a run is followed, its trainer's (alive, paused, stalled) says it,
        # not also its file's "running".
        status = None if self._following else self._run_status
        self.run_state.setText(self._run_name if status is None else f"{self._run_name}: {status}")
        color = {"running": "#2e7d32", "crashed": "#c62828", "failed": "#c62828"}.get(status or "")
        self.run_state.setStyleSheet(f"color: {color}; font-weight: bold;" if color else "")

    def show_following(self, state: str | None, silent_s: float = 0.0) -> None:
        """A followed run's trainer: "alive" (a record within the stall limit), "paused" or "stalled"
        (nothing for `silent_s`); None when not following."""
        self.follow_state.setVisible(state is not None)
        if self._following != (state is not None):
            self._following = state is not None
            self._show_run_state()
        if state is None:
            return
        text = f"following · {state}" + (f" ({format_duration(silent_s)} without a record)" if state == "stalled" else "")
        self.follow_state.setText(text)
        color = {"alive": "#2e7d32", "paused": "#b26a00", "stalled": "#c62828"}[state]
        self.follow_state.setStyleSheet(f"color: {color};")
        self.follow_state.setToolTip("The app follows this run's files and steers it through its control file; "
                                     "alive = a new record within the stall limit")

    def show_total(self, total_steps: int | None) -> None:
        """The planned number of steps of a run read from disk (a live run's comes with RunStarted)."""
        self._total_steps = int(total_steps or 0)
        self._start_step = 0
        self.progress.setRange(0, max(self._total_steps, 1))

    def show_ended(self) -> None:
        """The run is over: nothing remains to estimate (the last step, loss and rate stay shown)."""
        self.eta.setText("ETA –")

    def show_batch(self, record: BatchRecord) -> None:
        total = self._total_steps
        self.progress.setValue(min(record.step, total))
        self.progress_text.setText(f"step {record.step} / {total} · epoch {record.epoch:.2f}")
        # wall_time_s counts from this session's start: a resumed run's rate is over the steps since then.
        remaining = (total - record.step) * record.wall_time_s / max(record.step - self._start_step, 1)
        self.eta.setText(f"ETA {format_duration(remaining)}")
        self.throughput.setText(f"{record.tokens_per_s:,.0f} tok/s")
        memory = f"mem {format_bytes(record.memory_bytes)}"
        if record.driver_memory_bytes > 0:  # a GPU: what its driver holds too (caches, MPS graphs)
            memory += f" · driver {format_bytes(record.driver_memory_bytes)}"
        self.memory.setText(memory)

    def show_event(self, event: RunEvent) -> None:
        if event.event == "device_fallback":
            self._warn_device(self.device.text(), event.message)
        elif event.event in STEP_OPTION_EVENTS:
            self._note_step_option(event)
        self.show_notice(event.message)

    def show_notice(self, message: str) -> None:
        """A message for a while (NOTICE_MS); the next one replaces it."""
        self.notice.show_text(message)
        self._notice_timer.start(NOTICE_MS)

    def currentMessage(self) -> str:  # noqa: N802 - QStatusBar's name, for a notice as for a Qt message
        return self.notice.full_text or super().currentMessage()

    def _note_step_option(self, event: RunEvent) -> None:
        """The cold compile time ("compiled the geometric step in 31.2 s") stays in view after the
        transient message; a failed compilation or a refused bf16 stays as a warning."""
        self._step_notes.append(event.message)
        text = {"step_compiled": event.message, "compile_failed": "step not compiled",
                "precision_fallback": "fp32 (bf16 not used)"}.get(event.event)
        if text is not None:  # a recompilation is only the transient message (and the tooltip)
            self._step_parts[event.event] = text
        self._show_step_options()

    def _show_step_options(self) -> None:
        self.step_options.setText(" · ".join(self._step_parts.values()))
        self.step_options.setToolTip("\n".join(self._step_notes))
        warn = "compile_failed" in self._step_parts or "precision_fallback" in self._step_parts
        self.step_options.setStyleSheet(WARNING_STYLE if warn else "")
        self.step_options.setVisible(bool(self._step_parts))

    def _warn_device(self, text: str, tooltip: str | None = None) -> None:
        self.device.setText(text)
        self.device.setStyleSheet(WARNING_STYLE)
        if tooltip:
            self.device.setToolTip(tooltip)
