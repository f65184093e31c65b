from __future__ import annotations

import json

import pytest

from geogui import paths

from geogui.settings import store as settings_store
from geogui.settings import Mode, Settings, SettingsError


def test_settings_round_trip_through_the_config_dir(private_dirs):
    settings = Settings()
    settings.run.batch_size = 8
    settings.run.mode = Mode.GEOMETRIC
    path = settings_store.save_settings(settings).path
    assert path == paths.settings_file()
    assert path.is_relative_to(private_dirs / "config")
    loaded = settings_store.load_settings()
    assert loaded.notice is None
    assert loaded.settings == settings


def test_missing_file_gives_defaults_without_notice():
    assert settings_store.load_settings() == settings_store.LoadedSettings(Settings(), None)


def test_corrupt_file_falls_back_to_defaults_and_keeps_a_backup():
    path = paths.settings_file()
    path.write_text("{ not json", encoding="utf-8")
    loaded = settings_store.load_settings()
    assert loaded.settings == Settings()
    assert "unreadable" in loaded.notice and "settings.json.bak" in loaded.notice
    assert path.with_name("settings.json.bak").read_text(encoding="utf-8") == "{ not json"


def test_bad_values_fall_back_one_by_one():
    path = paths.settings_file()
    path.write_text(json.dumps({
        "schema_version": 1,
        "run": {"batch_size": 0, "steps": 77, "typo_key": 1},
        "model": {"d_model": 64},
        "nonsense": {},
    }), encoding="utf-8")
    loaded = settings_store.load_settings()
    assert loaded.settings.run.steps == 77  # a valid value survives next to bad ones
    assert loaded.settings.run.batch_size == Settings().run.batch_size
    assert loaded.settings.model.d_model == 64
    for name in ("run.batch_size", "run.typo_key", "nonsense"):
        assert name in loaded.notice
    assert path.with_name("settings.json.bak").exists()


def test_a_broken_cross_field_rule_resets_its_section():
    paths.settings_file().write_text(json.dumps({"model": {"d_model": 30}, "run": {"steps": 9}}), encoding="utf-8")
    loaded = settings_store.load_settings()
    assert loaded.settings.model == Settings().model
    assert loaded.settings.run.steps == 9
    assert "model.d_model" in loaded.notice


def test_presets_save_list_load_delete():
    fast = Settings()
    fast.run.mode = Mode.STANDARD
    fast.run.steps = 42
    settings_store.save_preset("fast run", fast)
    settings_store.save_preset("Another", Settings())
    assert settings_store.list_presets() == ["Another", "fast run"]
    assert settings_store.load_preset("fast run") == fast
    settings_store.delete_preset("fast run")
    assert settings_store.list_presets() == ["Another"]


@pytest.mark.parametrize("name", ["", "../escape", "a/b", ".hidden", "x" * 65])
def test_preset_names_must_be_plain_file_names(name):
    with pytest.raises(SettingsError, match="preset name"):
        settings_store.save_preset(name, Settings())


def test_a_bad_preset_is_reported_not_salvaged():
    (paths.presets_dir() / "broken.json").write_text(json.dumps({"run": {"batch_size": -1}}), encoding="utf-8")
    with pytest.raises(SettingsError, match="run.batch_size"):
        settings_store.load_preset("broken")
