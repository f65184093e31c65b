"""File dialogs that open where the user last was, and the folder each kind of dialog opens in:
the one last chosen in that kind of dialog, kept across launches in the config directory
(`dialog-folders.json`).

A dialog opens where the user last saved or opened that kind of thing (run exports, plot images,
plot data, TensorBoard log directories, runs opened from disk), as native applications do. A folder
that has gone since, or a missing or corrupt file, falls back to the kind's default: nothing here
ever stops a dialog from opening.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QWidget

from geogui import paths
from geogui.atomic_write import write_text_atomic

FILE_NAME = "dialog-folders.json"


class DialogKind(str, Enum):
    RUN_EXPORT = "run-export"
    PLOT_IMAGE = "plot-image"  # File → Export Plot and a plot's right-click "Export image…"
    PLOT_DATA = "plot-data"
    TENSORBOARD = "tensorboard"
    OPEN_RUN = "open-run"


def _file() -> Path:
    return paths.config_dir() / FILE_NAME


def _default(kind: DialogKind) -> Path:
    return paths.runs_dir() if kind is DialogKind.OPEN_RUN else Path.home()


def _remembered() -> dict[str, str]:
    try:
        raw = json.loads(_file().read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    if not isinstance(raw, dict):
        return {}
    return {key: value for key, value in raw.items() if isinstance(key, str) and isinstance(value, str)}


def last_folder(kind: DialogKind) -> Path:
    """Where a dialog of `kind` opens: the folder last chosen in one, else the kind's default."""
    folder = _remembered().get(kind.value)
    if folder and Path(folder).is_dir():
        return Path(folder)
    return _default(kind)


def remember(kind: DialogKind, chosen: Path, is_folder: bool = False) -> None:
    """Keep the folder of `chosen` (a file saved, or with `is_folder` the folder chosen itself) for the
    next dialog of `kind`. A config directory that cannot be written only loses the memory."""
    folder = Path(chosen) if is_folder else Path(chosen).parent
    remembered = _remembered()
    remembered[kind.value] = str(folder.resolve())
    try:
        write_text_atomic(_file(), json.dumps(remembered, indent=2) + "\n")
    except OSError:
        pass


def ask_save_path(parent: QWidget, title: str, stem: str, filters: dict[str, str], kind: DialogKind) -> Path | None:
    """A file chosen in a save dialog that opens in the kind's last folder with `stem` and the first
    filter's suffix as the name; given the chosen filter's suffix when it has none of the filters'."""
    first_suffix = next(iter(filters.values()))
    out, chosen = QFileDialog.getSaveFileName(parent, title, str(last_folder(kind) / f"{stem}{first_suffix}"),
                                              ";;".join(filters))
    if not out:
        return None
    out = Path(out)
    if out.suffix.lower() not in filters.values():
        out = out.with_name(out.name + filters.get(chosen, first_suffix))
    remember(kind, out)
    return out


def ask_folder(parent: QWidget, title: str, kind: DialogKind) -> Path | None:
    """A folder chosen in a dialog that opens in the kind's last folder. For OPEN_RUN the folder
    remembered is the one holding the run, so that the next dialog shows the runs side by side."""
    folder = QFileDialog.getExistingDirectory(parent, title, str(last_folder(kind)))
    if not folder:
        return None
    remember(kind, Path(folder), is_folder=kind is not DialogKind.OPEN_RUN)
    return Path(folder)
