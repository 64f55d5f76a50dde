"""Config files: defaults load, and bad files are refused naming the file, key and what is allowed."""
from pathlib import Path

import numpy as np
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


def test_a_goal_curriculum_is_xyz_only_and_wider_than_the_success_threshold(tmp_path):
    with pytest.raises(ConfigError, match=r"goal_max_angle_rad \(1.0\) limits xyz goals only; in goal mode z"):
        EnvConfig().with_options(goal_mode="z", goal_max_angle_rad=1.0)
    path = write(tmp_path, "task:\n  success_threshold_rad: 0.8\n  goal_max_angle_rad: 0.7\n")
    with pytest.raises(ConfigError, match=r"goal_max_angle_rad \(0.7\) must exceed task.success_threshold_rad "
                                          r"\(0.8\)") as error:
        load_env_config(path)
    assert str(error.value).startswith(str(path))


def test_the_settling_limit_may_not_be_shorter_than_the_settling_itself(tmp_path):
    path = write(tmp_path, "task:\n  settle_steps: 5\n  max_settle_steps: 4\n")
    with pytest.raises(ConfigError, match=r"task.max_settle_steps \(4\) must be at least task.settle_steps \(5\)"):
        load_env_config(path)
    assert EnvConfig().with_options(settle_steps=5, max_settle_steps=5).task.max_settle_steps == 5


def test_a_goal_curriculum_keeps_every_goal_of_an_episode_near_the_cube():
    from sim import rotations
    from sim.batch import ReorientBatch

    config = EnvConfig().with_options(goal_max_angle_rad=1.0, timeout_s=0.4)
    batch = ReorientBatch(config, 6, seed=3)
    try:
        batch.reset(3)
        assert np.all((batch.distance >= 0.4) & (batch.distance <= 1.0 + 1e-9))
        rng, renewed = np.random.default_rng(0), 0
        for _ in range(12):  # episodes end and restart (timeouts after 5 steps): new episodes' goals too
            goals_before = batch.goal.copy()
            batch.step(rng.integers(0, 11, size=(6, 20)))
            fresh = np.any(goals_before != batch.goal, axis=1)
            renewed += int(fresh.sum())
            cube = batch.qpos[:, batch.index.cube_qpos + 3 : batch.index.cube_qpos + 7]
            distance = rotations.angle_between(cube, batch.goal)
            assert np.all(distance[fresh] <= 1.0 + 1e-9) and np.all(distance[fresh] >= 0.4)
        assert renewed >= 6
    finally:
        batch.close()
