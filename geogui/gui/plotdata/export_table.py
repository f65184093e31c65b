"""Write the series a plot shows (every run, raw and smoothed) as CSV or JSON. No Qt here.

CSV is long ("tidy"): one row per point, `run, series, step, <x axis>, value, smoothed`, with empty
cells where a value is missing or not finite, so it opens in a spreadsheet and in pandas. JSON keeps
one object per series, arrays side by side, null for a missing or non-finite value.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

from geogui.gui.plotdata.shown_series import ShownSeries

DATA_SUFFIXES = (".csv", ".json")


class PlotDataError(ValueError):
    """The file could not be written; the message names it and says why."""


def _cell(value: float) -> float | str:
    return value if math.isfinite(value) else ""


def _json_values(values) -> list[Any]:
    return [value if math.isfinite(value) else None for value in values.tolist()]


def write_plot_data(out: Path, title: str, x_name: str, shown: list[ShownSeries], log_y: bool = False) -> int:
    """Write `shown` to `out` (.csv or .json by its suffix). Returns the number of points written."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in DATA_SUFFIXES:
        raise PlotDataError(f"{out}: plot data is written as .csv or .json, not {suffix or 'no suffix'!r}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8", newline="") as handle:
            if suffix == ".csv":
                _write_csv(handle, x_name, shown)
            else:
                json.dump(_as_json(title, x_name, shown, log_y), handle, indent=1)
    except OSError as exc:
        raise PlotDataError(f"{out}: cannot write ({exc.strerror or exc})") from None
    return sum(len(s.y) for s in shown)


def _write_csv(handle, x_name: str, shown: list[ShownSeries]) -> None:
    writer = csv.writer(handle)
    with_x = x_name != "step"
    writer.writerow(["run", "series", "step", *([x_name] if with_x else []), "value", "smoothed"])
    for s in shown:
        smoothed = s.smoothed.tolist() if s.smoothed is not None else [math.nan] * len(s.y)
        for step, x, y, smooth in zip(s.step.tolist(), s.x.tolist(), s.y.tolist(), smoothed):
            writer.writerow([s.run, s.name, int(step), *([x] if with_x else []), _cell(y), _cell(smooth)])


def _as_json(title: str, x_name: str, shown: list[ShownSeries], log_y: bool) -> dict[str, Any]:
    return {
        "plot": title, "x": x_name, "log_y": log_y,
        "series": [{
            "run": s.run, "name": s.name, "step": [int(v) for v in s.step.tolist()], "x": _json_values(s.x),
            "value": _json_values(s.y), "smoothed": None if s.smoothed is None else _json_values(s.smoothed),
        } for s in shown],
    }
