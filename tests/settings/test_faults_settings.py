"""Fault suite: corrupt, outdated, future and out-of-bounds settings files never block start-up and
never lose a value that can be kept; the strict `--settings` path refuses them with the reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from geogui import paths

from geogui.settings import store as settings_store
from geogui.settings import SCHEMA_VERSION, Settings, SettingsError, load_settings_file
from geogui.settings.migrations import MigrationError, migrate, rename_field

FIXTURES = Path(__file__).parent / "fixtures"
# The fixture is a version-0 file whose fields were later renamed: run.lr -> run.learning_rate and
# model.width -> model.d_model. These migrations are what a release renaming them would register.
RENAMES_V0_TO_V1 = {0: lambda raw: rename_field(rename_field(raw, "run.lr", "run.learning_rate"),
                                                "model.width", "model.d_model")}


def settings_file_with(content: str | bytes) -> Path:
    path = paths.settings_file()
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "reason"), [
    ('{"run": {"steps": 12', "unreadable"),  # truncated mid-write
    (b"\xff\xfe{\x00}\x00", "unreadable (not UTF-8 text)"),
    ("[1, 2, 3]", "not a settings object"),
    ("", "unreadable"),
])
def test_an_unreadable_settings_file_starts_with_defaults_and_a_backup(content, reason):
    path = settings_file_with(content)
    original = path.read_bytes()
    loaded = settings_store.load_settings()
    assert loaded.settings == Settings()
    assert reason in loaded.notice and "settings.json.bak" in loaded.notice and "\n" not in loaded.notice
    assert path.with_name("settings.json.bak").read_bytes() == original


@pytest.mark.parametrize(("section", "key", "value"), [
    ("run", "batch_size", "sixteen"),  # wrong type
    ("run", "learning_rate", -1.0),  # out of bounds
    ("run", "penalty_weight", 1e400),  # inf once parsed
    ("model", "seq_len", 10**9),  # out of bounds
    ("run", "steps", None),
])
def test_a_bad_value_falls_back_alone_and_the_others_are_kept(section, key, value):
    raw = {"schema_version": 1, "run": {"steps": 77, "seed": 5}, "model": {"n_layers": 3}}
    raw[section][key] = value
    settings_file_with(json.dumps(raw))
    loaded = settings_store.load_settings()
    assert getattr(getattr(loaded.settings, section), key) == getattr(getattr(Settings(), section), key)
    kept = {"steps": 77, "seed": 5} if not (section == "run" and key == "steps") else {"seed": 5}
    assert {name: getattr(loaded.settings.run, name) for name in kept} == kept
    assert loaded.settings.model.n_layers == 3
    assert f"{section}.{key}" in loaded.notice


def test_an_older_file_is_migrated_and_no_renamed_value_is_lost():
    path = settings_file_with((FIXTURES / "settings_v0_renamed_fields.json").read_text())
    loaded = settings_store.load_settings(migrations=RENAMES_V0_TO_V1)
    assert loaded.settings.run.learning_rate == 0.0005
    assert loaded.settings.model.d_model == 64
    assert (loaded.settings.run.mode.value, loaded.settings.run.batch_size, loaded.settings.model.n_layers) == (
        "geometric", 8, 2)
    assert loaded.settings.schema_version == SCHEMA_VERSION
    assert loaded.notice == (f"settings.json: migrated from schema version 0 to {SCHEMA_VERSION} "
                             "(original kept as settings.json.bak)")
    assert json.loads(path.with_name("settings.json.bak").read_text())["run"]["lr"] == 0.0005
    # The strict reader (--settings, presets) migrates the same way.
    assert load_settings_file(path, RENAMES_V0_TO_V1).run.learning_rate == 0.0005


def test_without_its_migration_an_older_file_keeps_what_still_fits():
    settings_file_with((FIXTURES / "settings_v0_renamed_fields.json").read_text())
    loaded = settings_store.load_settings()  # the real registry has no migration from version 0
    assert loaded.settings.run.batch_size == 8 and loaded.settings.run.steps == 250
    assert "no migration from version 0" in loaded.notice
    assert "run.lr" in loaded.notice and "model.width" in loaded.notice


def test_a_file_from_a_newer_geogui_keeps_the_values_this_version_understands():
    path = settings_file_with(json.dumps({"schema_version": SCHEMA_VERSION + 1,
                                          "run": {"steps": 42, "future_knob": True}, "telemetry": {}}))
    loaded = settings_store.load_settings()
    assert loaded.settings.run.steps == 42 and loaded.settings.schema_version == SCHEMA_VERSION
    assert f"newer geogui (schema version {SCHEMA_VERSION + 1})" in loaded.notice
    assert "run.future_knob" in loaded.notice and "telemetry" in loaded.notice
    assert path.with_name("settings.json.bak").exists()
    with pytest.raises(SettingsError, match="written by a newer geogui"):
        load_settings_file(path)


def test_migrations_apply_in_order_and_never_change_their_input():
    calls = []
    steps = {1: lambda raw: calls.append(1) or rename_field(raw, "run.a", "run.b"),
             2: lambda raw: calls.append(2) or rename_field(raw, "run.b", "run.c")}
    raw = {"schema_version": 1, "run": {"a": 3}}
    result = migrate(raw, 3, steps)
    assert calls == [1, 2] and result.raw == {"schema_version": 3, "run": {"c": 3}} and result.migrated
    assert raw == {"schema_version": 1, "run": {"a": 3}}
    assert migrate({"run": {}}, 1, steps).from_version == 1  # no version: the first format
    with pytest.raises(MigrationError, match="whole number"):
        migrate({"schema_version": "two"}, 1, steps)


def test_a_non_numeric_schema_version_is_reported_and_the_values_kept():
    settings_file_with(json.dumps({"schema_version": "v2", "run": {"steps": 31}}))
    loaded = settings_store.load_settings()
    assert loaded.settings.run.steps == 31
    assert "schema_version must be a whole number" in loaded.notice


def test_a_backup_that_cannot_be_written_does_not_block_start_up(monkeypatch):
    path = settings_file_with((FIXTURES / "settings_v0_renamed_fields.json").read_text())

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copy2", disk_full)
    loaded = settings_store.load_settings(migrations=RENAMES_V0_TO_V1)
    assert loaded.settings.model.d_model == 64
    assert "no backup could be written (No space left on device)" in loaded.notice
    assert json.loads(path.read_text())["run"]["lr"] == 0.0005  # the original is still there
