"""Config files: defaults load, and bad files are refused naming the file, key and what is allowed."""
from pathlib import Path

import pytest
import yaml

from sim.config import EnvConfig, load_env_config
from sim.config_loading import ConfigError, to_mapping


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "env.yaml"
    path.write_text(text)
    return path


def test_shipped_file_equals_the_dataclass_defaults():
    assert load_env_config() == EnvConfig()


def test_round_trip_through_yaml(tmp_path):
    config = EnvConfig().with_options(goal_mode="z", action_type="continuous")
    path = write(tmp_path, yaml.safe_dump(to_mapping(config)))
    assert load_env_config(path) == config


def test_unknown_key_names_file_and_key(tmp_path):
    path = write(tmp_path, "task:\n  goal_mod: z\n")
    with pytest.raises(ConfigError) as error:
        load_env_config(path)
    message = str(error.value)
    assert str(path) in message and "task.goal_mod" in message and "goal_mode" in message


def test_out_of_range_value_names_the_allowed_range(tmp_path):
    path = write(tmp_path, "task:\n  action_ema: 1.5\n")
    with pytest.raises(ConfigError, match=r"task\.action_ema.*1\.5.*\[0\.0, 1\.0\]") as error:
        load_env_config(path)
    assert str(path) in str(error.value)


def test_out_of_range_pair_element(tmp_path):
    path = write(tmp_path, "randomization:\n  physics:\n    mass_scale: [0.5, 20.0]\n")
    with pytest.raises(ConfigError, match=r"randomization\.physics\.mass_scale.*20\.0.*\[0\.01, 10\.0\]"):
        load_env_config(path)


def test_reversed_range_is_refused(tmp_path):
    path = write(tmp_path, "randomization:\n  physics:\n    friction_scale: [1.3, 0.7]\n")
    with pytest.raises(ConfigError, match=r"friction_scale.*low > high"):
        load_env_config(path)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("task:\n  substeps: ten\n", r"task\.substeps.*expected int"),
        ("task:\n  substeps: 2.5\n", r"task\.substeps.*expected int"),
        ("task:\n  goal_mode: xy\n", r"task\.goal_mode.*choose one of xyz, z"),
        ("randomization:\n  backlash:\n    enabled: 1\n", r"randomization\.backlash\.enabled.*true or false"),
        ("task: [1, 2]\n", r"'task'.*expected a mapping"),
    ],
)
def test_wrong_types_are_refused(tmp_path, text, expected):
    with pytest.raises(ConfigError, match=expected):
        load_env_config(write(tmp_path, text))


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_env_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_env_config(write(tmp_path, "task: [unclosed\n"))


def test_env_options_are_checked_too():
    with pytest.raises(ConfigError, match=r"env options.*goal_mode"):
        EnvConfig().with_options(goal_mode="sideways")


def test_randomize_false_switches_every_group_off():
    config = EnvConfig().with_options(randomize=False)
    groups = {name: group for name, group in to_mapping(config.randomization).items() if name not in ("mode", "adr")}
    assert len(groups) == 9 and all(group["enabled"] is False for group in groups.values())
    assert config.randomization.mode == "fixed"
