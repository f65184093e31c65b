"""The samples a run logged (its samples.jsonl), read tolerantly: a line that is cut off or not a
sample is skipped, so that a run still being written, or written by another version, shows the rest."""

from __future__ import annotations

import json
from pathlib import Path

from geogui.engine.metrics import RecordKind
from geogui.engine.samples import SampleRecord

SAMPLES_FILE = "samples.jsonl"


def read_logged_samples(run_dir: Path) -> list[SampleRecord]:
    try:
        text = (Path(run_dir) / SAMPLES_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:  # none logged (yet), or unreadable: the table simply starts empty
        return []
    records: list[SampleRecord] = []
    for line in text.splitlines():
        try:
            data = json.loads(line)
            if isinstance(data, dict) and data.get("kind", RecordKind.SAMPLE) == RecordKind.SAMPLE:
                records.append(SampleRecord.from_json(data))
        except (ValueError, KeyError, TypeError):
            continue
    return records
