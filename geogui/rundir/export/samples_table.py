"""What the model wrote, exported: the run's samples as a CSV (`geogui-export RUN_DIR -o OUT.csv
--samples`, one row per sample, the prompt and text whole, newlines kept inside quoted cells), and
the answer accuracy of the run summary (final and best per mode)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from geogui.engine.samples import AccuracyRecord
from geogui.rundir.export.errors import ExportError
from geogui.rundir.samples import read_samples

SAMPLES_FORMAT = "samples"
SAMPLE_COLUMNS = ("step", "mode", "temperature", "top_k", "seconds", "right", "expected", "prompt", "text")


def write_samples(run_dir: Path, out: Path) -> int:
    samples = read_samples(run_dir)
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        handle = open(out, "w", encoding="utf-8", newline="")
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc.strerror or exc})") from None
    with handle:
        writer = csv.writer(handle)
        writer.writerow(SAMPLE_COLUMNS)
        for sample in samples:
            writer.writerow(["" if value is None else value for value in
                             (getattr(sample, name) for name in SAMPLE_COLUMNS)])
    return len(samples)


def accuracy_summary(accuracies: list[AccuracyRecord]) -> dict[str, dict[str, Any]]:
    """Per mode, the last accuracy measured in it and the best (the earliest of equals), with steps."""
    out: dict[str, dict[str, Any]] = {}
    for record in accuracies:
        if not record.asked:
            continue
        entry = out.setdefault(record.mode, {"best": -1.0, "best_step": None})
        entry["final"], entry["final_step"] = record.fraction, record.step
        if record.fraction > entry["best"]:
            entry["best"], entry["best_step"] = record.fraction, record.step
    return out


def accuracy_summary_lines(per_mode: dict[str, dict[str, Any]]) -> list[str]:
    return [f"- answer accuracy, {mode}: final {entry['final']:.0%} (step {entry['final_step']}), "
            f"best {entry['best']:.0%} (step {entry['best_step']})" for mode, entry in per_mode.items()]
