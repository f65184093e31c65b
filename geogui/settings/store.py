"""The settings file and named presets on disk. Imports no Qt, so the CLI and tests can use it too.

Loading the app's own settings file is forgiving: a corrupt or partly invalid file must never block
start-up. Every value that does not validate falls back to its default, the original file is kept
next to it as ``settings.json.bak``, and the caller gets a one-line notice to show the user.
Presets are files the user picks by name, so they are loaded strictly and a bad one is reported.

A file from an older geogui is migrated (see `geogui.settings.migrations`) and its original kept as
the `.bak`; one from a newer geogui keeps the values this version understands. Two app instances
share the file: every write is atomic (a whole old or a whole new file, never a mix), and a write
over a file that another instance changed since this one read it says so (the last writer wins).
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from geogui import paths
from geogui.atomic_write import write_text_atomic
from geogui.settings import SCHEMA_VERSION, Settings, SettingsError, load_settings_file, settings_to_json
from geogui.settings.migrations import MIGRATIONS, Migration, MigrationError, migrate

BACKUP_SUFFIX = ".bak"
PRESET_SUFFIX = ".json"
# Letters, digits, space, dot, dash and underscore: a preset name is also a file name on every OS.
_PRESET_NAME = re.compile(r"^[\w .-]{1,64}$")


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    notice: str | None = None  # one line for the status bar when something was reset; None when clean


@dataclass(frozen=True)
class SavedSettings:
    path: Path
    notice: str | None = None  # set when another instance had changed the file since this one read it


# (inode, size, mtime) of each settings file as this process last read or wrote it. An atomic
# replace makes a new inode, so a write by another instance is seen even within one mtime tick.
_seen: dict[Path, tuple[int, int, int] | None] = {}


def load_settings(path: Path | None = None, migrations: dict[int, Migration] = MIGRATIONS) -> LoadedSettings:
    """Read the app's settings file; invalid parts fall back to defaults (see module docstring)."""
    path = Path(path) if path is not None else paths.settings_file()
    _seen[path] = _stamp(path)
    if not path.exists():
        return LoadedSettings(Settings())
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        backup = _keep_backup(path)
        return LoadedSettings(Settings(), f"{path.name} is unreadable ({_reason(exc)}); using defaults, {backup}")
    if not isinstance(raw, dict):
        backup = _keep_backup(path)
        return LoadedSettings(Settings(), f"{path.name} is not a settings object; using defaults, {backup}")
    version_note = None
    try:
        migrated = migrate(raw, SCHEMA_VERSION, migrations)
        raw = migrated.raw
        if migrated.newer:
            version_note = (f"written by a newer geogui (schema version {migrated.from_version}); "
                            "kept the values this version understands")
        elif migrated.migrated:
            version_note = f"migrated from schema version {migrated.from_version} to {SCHEMA_VERSION}"
    except MigrationError as exc:
        version_note = f"{exc}; kept the values that still fit"
    settings, rejected = _salvage(raw)
    if not rejected and version_note is None:
        return LoadedSettings(settings)
    backup = _keep_backup(path)
    parts = [version_note] if version_note else []
    if rejected:
        parts.append(f"reset to defaults: {', '.join(rejected)}")
    return LoadedSettings(settings, f"{path.name}: {'; '.join(parts)} ({backup})")


def save_settings(settings: Settings, path: Path | None = None) -> SavedSettings:
    """Write the settings atomically. If another instance wrote the file since this process last read
    or wrote it, this write still wins, and the notice says that the other instance's was replaced."""
    path = Path(path) if path is not None else paths.settings_file()
    notice = None
    if path in _seen and _stamp(path) != _seen[path]:
        notice = f"{path.name} had been changed by another geogui window; replaced with this window's settings"
    _write_atomically(path, settings_to_json(settings))
    _seen[path] = _stamp(path)
    return SavedSettings(path, notice)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


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
            continue  # already dealt with by the migrations
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


def _keep_backup(path: Path) -> str:
    """Copy the original next to it; the phrase for the notice. A failed copy must not block start-up,
    and the original is not overwritten before the next save, so the notice says so instead."""
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    try:
        shutil.copy2(path, backup)
    except OSError as exc:
        return f"no backup could be written ({exc.strerror or exc}): copy {path.name} before saving"
    return f"original kept as {backup.name}"


def _reason(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    return getattr(exc, "strerror", None) or str(exc)


def _write_atomically(path: Path, text: str) -> None:
    write_text_atomic(path, text + "\n")  # a crash never leaves half a settings file
