"""The sampling section: defaults, bounds, and settings files written before it still load."""

import json

import pytest
from pydantic import ValidationError

from geogui.settings import SamplingSettings, Settings, load_settings_file


def test_a_file_without_the_section_loads_with_its_defaults(tmp_path):
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"schema_version": 1, "run": {"steps": 7}}))
    settings = load_settings_file(path)
    assert settings.run.steps == 7 and settings.sampling == SamplingSettings()
    assert (settings.sampling.temperature, settings.sampling.top_k, settings.sampling.max_bytes) == (0.8, 0, 256)
    assert (settings.sampling.sample_interval, settings.sampling.accuracy_questions, settings.sampling.prompt) == (
        500, 16, "")


@pytest.mark.parametrize("field, value", [("temperature", -0.1), ("temperature", 5.1), ("top_k", 257),
                                          ("max_bytes", 0), ("max_bytes", 4097), ("sample_interval", -1),
                                          ("accuracy_questions", -1), ("accuracy_interval", -1),
                                          ("answer_bytes", 0)])
def test_out_of_bounds_values_are_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        Settings.model_validate({"sampling": {field: value}})


def test_every_field_has_a_title_for_the_form():
    assert Settings.model_fields["sampling"].title == "Sampling"
    assert all(info.title and info.description for info in SamplingSettings.model_fields.values())
