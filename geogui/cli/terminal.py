"""What the command-line tools show on the terminal: the progress bar, the few event lines a run
prints, and errors as one line with no traceback. The run log has everything else."""

from __future__ import annotations

import sys
import time
from contextlib import closing
from pathlib import Path
from typing import TextIO

from geogui.engine.metrics import BatchRecord, EvalRecord, ModeChange, RunEvent, RunStarted
from geogui.engine.samples import AccuracyRecord, SampleRecord
from geogui.rundir.driver import RunDriver, RunFailed

SAMPLE_CHARACTERS = 100  # of a sample's first line, on the terminal (the run's samples.jsonl has it all)


class InputError(Exception):
    """Bad input from the command line; printed as one line, no traceback."""


class ProgressBar:
    """A one-line terminal progress bar with ETA and loss; plain periodic lines when not a terminal."""

    def __init__(self, total: int, stream: TextIO = sys.stderr, start: int = 0):
        self.total = total
        self.start = start
        self.stream = stream
        self.interactive = stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def update(self, step: int, loss: float, batch_ms: float, mode: str) -> None:
        now = time.monotonic()
        if step < self.total and now - self._last_draw < (0.1 if self.interactive else 5.0):
            return
        self._last_draw = now
        elapsed = now - self.started
        eta = elapsed / max(1, step - self.start) * (self.total - step)
        width = 30
        filled = int(width * step / self.total)
        line = (f"[{'#' * filled}{'.' * (width - filled)}] {step}/{self.total} "
                f"ETA {int(eta) // 60}:{int(eta) % 60:02d}  loss {loss:.4f}  {batch_ms:.1f} ms/batch  {mode}")
        if self.interactive:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self.stream.write(("\n" if self.interactive else "") + text + "\n")
        self.stream.flush()


def _off_the_bar(bar: ProgressBar | None) -> str:
    # An interactive bar leaves the cursor at the end of its line: a message starts on the next one.
    return "\n" if bar is not None and bar.interactive else ""


def report_event(event, run_path: Path, bar: ProgressBar | None, replicas_text: str = "") -> None:
    """What the terminal shows of one engine event; the run log has everything."""
    if isinstance(event, RunStarted):
        print(f"run {run_path}  {replicas_text}device {event.device}  {event.parameters:,} parameters  "
              f"data: {event.data_source}", file=sys.stderr)
    elif isinstance(event, BatchRecord) and bar:
        bar.update(event.step, event.loss, event.batch_time_s * 1e3, event.mode)
    elif isinstance(event, EvalRecord) and bar:
        bar.message(f"step {event.step}: eval loss {event.loss:.4f}  perplexity {event.perplexity:.2f}")
    elif isinstance(event, AccuracyRecord) and bar:
        bar.message(f"step {event.step}: {event.right}/{event.asked} held-out answers right ({event.fraction:.0%})")
    elif isinstance(event, SampleRecord) and bar:
        bar.message(f"step {event.step}: sample: {sample_line(event)}")
    elif isinstance(event, (RunEvent, ModeChange)):
        text = event.message if isinstance(event, RunEvent) else f"mode -> {event.mode}"
        print(_off_the_bar(bar) + text, file=sys.stderr)


def sample_line(sample: SampleRecord) -> str:
    """A sample's first line, its control bytes shown as "·", and whether its answer was right."""
    first = sample.text.split("\n", 1)[0][:SAMPLE_CHARACTERS]
    shown = "".join(c if c.isprintable() else "·" for c in first)
    if sample.right is None:
        return shown
    return f"{shown}  ({'right' if sample.right else f'wrong; expected {sample.expected}'})"


def report_error(program: str, message: str, bar: ProgressBar | None = None) -> None:
    """`program: error: message`, one line on stderr, below the progress bar if there is one."""
    print(_off_the_bar(bar) + f"{program}: error: {message}", file=sys.stderr)


def report_end(status: str, run_path: Path, bar: ProgressBar | None) -> None:
    """The run's last line: its status and directory (the bar's line is ended first)."""
    if bar is not None and bar.interactive:
        print(file=sys.stderr)
    print(f"{status}: {run_path}", file=sys.stderr)


def follow_run(driver: RunDriver, bar: ProgressBar | None, program: str, mirror=None,
               interrupted: str = "stopped") -> str:
    """Show a run as it goes (and write each event to `mirror`, a TensorBoard one, if any); its final
    status, `interrupted` after Ctrl+C. Out of memory or a full disk is one line saying what was kept;
    an error nobody foresaw keeps its traceback."""
    try:
        with closing(driver.run()) as events:
            for event in events:
                if isinstance(event, RunFailed):
                    if not event.environment:
                        raise driver.error
                    report_error(program, event.message, bar)
                    continue
                if mirror is not None:
                    mirror.write(event)
                report_event(event, driver.path, bar)
    except KeyboardInterrupt:
        return interrupted
    return driver.status
