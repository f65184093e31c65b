"""The settings file and named presets on disk. Imports no Qt, so the CLI and tests can use it too.

Loading the app's own settings file is forgiving: a corrupt or partly invalid file must never block
start-up. Every value that does not validate falls back to its default, the original file is kept
next to it as ``settings.json.bak``, and the caller gets a one-line notice to show the user.
Presets are files the user picks by name, so they are loaded strictly and a bad one is reported.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from geogui import paths
from geogui.settings import SCHEMA_VERSION, Settings, SettingsError, load_settings_file, settings_to_json

BACKUP_SUFFIX = ".bak"
PRESET_SUFFIX = ".json"
# Letters, digits, space, dot, dash and underscore: a preset name is also a file name on every OS.
_PRESET_NAME = re.compile(r"^[\w .-]{1,64}$")


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    notice: str | None = None  # one line for the status bar when something was reset; None when clean


def load_settings(path: Path | None = None) -> LoadedSettings:
    """Read the app's settings file; invalid parts fall back to defaults (see module docstring)."""
    path = Path(path) if path is not None else paths.settings_file()
    if not path.exists():
        return LoadedSettings(Settings())
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        backup = _keep_backup(path)
        return LoadedSettings(Settings(), f"{path.name} is unreadable ({_reason(exc)}); using defaults, "
                                         f"original kept as {backup.name}")
    if not isinstance(raw, dict):
        backup = _keep_backup(path)
        return LoadedSettings(Settings(), f"{path.name} is not a settings object; using defaults, "
                                         f"original kept as {backup.name}")
    settings, rejected = _salvage(raw)
    if not rejected:
        return LoadedSettings(settings)
    backup = _keep_backup(path)
    return LoadedSettings(settings, f"{path.name}: reset to defaults: {', '.join(rejected)} "
                                    f"(original kept as {backup.name})")


def save_settings(settings: Settings, path: Path | None = None) -> Path:
    path = Path(path) if path is not None else paths.settings_file()
    _write_atomically(path, settings_to_json(settings))
    return path


def list_presets() -> list[str]:
    names = (p.stem for p in paths.presets_dir().glob(f"*{PRESET_SUFFIX}"))
    return sorted((name for name in names if _is_preset_name(name)), key=str.casefold)


def preset_path(name: str) -> Path:
    name = name.strip()
    if not _is_preset_name(name):
        raise SettingsError(f"preset name {name!r}: use 1-64 letters, digits, spaces, '.', '-' or '_'")
    return paths.presets_dir() / f"{name}{PRESET_SUFFIX}"


def _is_preset_name(name: str) -> bool:
    return bool(_PRESET_NAME.match(name)) and not name.startswith(".")


def save_preset(name: str, settings: Settings) -> Path:
    path = preset_path(name)
    _write_atomically(path, settings_to_json(settings))
    return path


def load_preset(name: str) -> Settings:
    """Raises SettingsError naming the file and the bad field when the preset does not validate."""
    return load_settings_file(preset_path(name))


def delete_preset(name: str) -> None:
    preset_path(name).unlink(missing_ok=True)


def _salvage(raw: dict[str, Any]) -> tuple[Settings, list[str]]:
    """Keep every valid value of `raw`; return the settings and the dotted names that were dropped."""
    rejected: list[str] = []
    sections: dict[str, BaseModel] = {}
    section_fields = {name: info for name, info in Settings.model_fields.items() if _is_section(info.annotation)}
    for key, value in raw.items():
        if key == "schema_version":
            continue  # there is one schema version so far; migrations would be applied here
        if key not in section_fields:
            rejected.append(key)
            continue
        model: type[BaseModel] = section_fields[key].annotation  # type: ignore[assignment]
        if not isinstance(value, dict):
            rejected.append(key)
            continue
        section, dropped = _salvage_section(model, value)
        sections[key] = section
        rejected.extend(f"{key}.{name}" for name in dropped)
    return Settings(schema_version=SCHEMA_VERSION, **sections), rejected


def _salvage_section(model: type[BaseModel], values: dict[str, Any]) -> tuple[BaseModel, list[str]]:
    try:
        return model.model_validate(values), []
    except ValidationError as exc:
        bad = {str(problem["loc"][0]) for problem in exc.errors() if problem["loc"]}
    kept = {name: value for name, value in values.items() if name not in bad}
    try:
        return model.model_validate(kept), sorted(bad)
    except ValidationError:
        # What is left still breaks a cross-field rule (d_model vs n_heads, say): the whole section resets.
        return model(), sorted(values)


def _is_section(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _keep_backup(path: Path) -> Path:
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    shutil.copy2(path, backup)
    return backup


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return getattr(exc, "strerror", None) or str(exc)


def _write_atomically(path: Path, text: str) -> None:
    # Write a sibling temp file and rename over the target, so a crash never leaves half a file.
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
