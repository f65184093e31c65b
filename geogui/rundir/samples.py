"""samples.jsonl: what the model wrote during training, one `SampleRecord` a line, kept apart from
metrics.jsonl so that a long run's samples never slow the reading of its curves.

It is written as metrics.jsonl is (`runlog`): appended, each line flushed as it is written and the
file synced when the run closes, so that a crash (even kill -9) loses at most the line being
written; a torn last line is ended before the next append and ignored on reading. A continued run
appends a "resumed" line at its checkpoint's step, which supersedes the samples logged past it.
The file exists only once a sample has been written (sampling off: no file).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from geogui.engine.metrics import RecordKind, Rewind
from geogui.engine.samples import SampleRecord
from geogui.rundir.layout import SAMPLES_FILE


class SamplesLog:
    """The appending end of a run's samples.jsonl (opened at the first line)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / SAMPLES_FILE
        self._file = None

    def append(self, record: SampleRecord) -> None:
        self._write(json.dumps(record.to_json(), ensure_ascii=False))

    def rewind(self, step: int) -> None:
        """The run continues from its checkpoint at `step`: samples logged past it are superseded."""
        if self.path.exists():
            self._write(json.dumps(Rewind(step).to_json()))

    def _write(self, line: str) -> None:
        if self._file is None:
            torn = self.path.exists() and _ends_torn(self.path)
            # No newline translation, as for metrics.jsonl: a line is exactly what was written.
            self._file = open(self.path, "a", encoding="utf-8", newline="\n")
            if torn:  # a crash's half line stays one unreadable line, not glued to this one
                self._file.write("\n")
        self._file.write(line + "\n")
        self._file.flush()

    def close(self) -> None:
        """Flush, sync and close; idempotent. The file is closed even when the sync fails."""
        if self._file is None or self._file.closed:
            return
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()


def _ends_torn(path: Path) -> bool:
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return False
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"


def read_samples(run_dir: Path) -> list[SampleRecord]:
    """The run's samples in the order they were written, after its rewinds; [] when it has none.
    A torn last line and lines that are not samples are left out."""
    try:
        data = (Path(run_dir) / SAMPLES_FILE).read_bytes()
    except FileNotFoundError:
        return []
    samples: list[SampleRecord] = []
    for raw in data[: data.rfind(b"\n") + 1].split(b"\n")[:-1]:
        try:
            line = json.loads(raw)
            if line.get("kind") == RecordKind.REWIND:
                step = int(line["step"])
                samples = [sample for sample in samples if sample.step <= step]
            elif line.get("kind") == RecordKind.SAMPLE:
                samples.append(SampleRecord.from_json(line))
        except (ValueError, TypeError, KeyError, AttributeError, UnicodeDecodeError):
            continue
    return samples
