"""What a run is made of, as validated pydantic models (`schema`), and where the app keeps the user's
settings and presets (`store`); `migrations` upgrades settings files written by older versions."""

from geogui.settings.schema import (
    MODE_DESCRIPTIONS,
    SCHEMA_VERSION,
    DataSettings,
    DeviceSettings,
    Mode,
    ModelSettings,
    RunSettings,
    SamplingSettings,
    Settings,
    SettingsError,
    describe_validation_error,
    load_settings_file,
    settings_to_json,
)

__all__ = [
    "MODE_DESCRIPTIONS", "SCHEMA_VERSION", "DataSettings", "DeviceSettings", "Mode", "ModelSettings",
    "RunSettings", "SamplingSettings", "Settings", "SettingsError", "describe_validation_error", "load_settings_file",
    "settings_to_json",
]
