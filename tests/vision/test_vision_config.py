"""config/vision.yaml loads; bad keys, ranges and inconsistent fields are refused with the key named."""
from __future__ import annotations

import pytest

from sim.config_loading import ConfigError
from vision.config import DEFAULT_CONFIG_PATH, VisionConfig, load_vision_config


def test_shipped_config_loads_with_dactyl_architecture():
    config = load_vision_config()
    assert isinstance(config, VisionConfig)
    assert config.model.stage_blocks == (1, 2, 2, 2) and config.model.stage_channels == (16, 32, 64, 64)
    assert config.model.camera_count == len(config.dataset.camera_names) == 3
    assert load_vision_config(overrides={"model.input_size": 200}).model.input_size == 200


def test_unknown_key_and_out_of_range_value_are_refused(tmp_path):
    bad = tmp_path / "vision.yaml"
    bad.write_text("model:\n  input_sise: 96\n")
    with pytest.raises(ConfigError, match="unknown key 'model.input_sise'"):
        load_vision_config(bad)
    with pytest.raises(ConfigError, match=r"'train.learning_rate': value 5.0 outside allowed range"):
        load_vision_config(DEFAULT_CONFIG_PATH, {"train.learning_rate": 5.0})


def test_inconsistent_fields_are_refused():
    with pytest.raises(ConfigError, match="same length"):
        load_vision_config(overrides={"model.stage_blocks": [1, 2, 2]})
    with pytest.raises(ConfigError, match="lists 2 cameras"):
        load_vision_config(overrides={"dataset.camera_names": ["left", "right"]})
