"""config/train.yaml restates the dataclass defaults; eval quotas and summaries by hand."""
from __future__ import annotations

import numpy as np
import pytest

from policies.config import TrainConfig, incompatible_keys, load_train_config
from sim.config_loading import ConfigError
from policies.evaluate import episode_quotas, goals_by_angle, summarize
from tests.policies.memory_envs import REPO_ROOT


def test_train_yaml_matches_the_dataclass_defaults():
    assert load_train_config(REPO_ROOT / "config" / "train.yaml") == TrainConfig()


def test_only_run_length_and_placement_keys_may_change_on_resume():
    base = TrainConfig()
    longer = load_train_config(REPO_ROOT / "config" / "train.yaml",
                               {"runner.total_updates": 5000, "runner.device": "cuda", "ray.address": "auto",
                                "ppo.precision": "bf16"})
    assert incompatible_keys(base, longer) == []
    with pytest.raises(ConfigError, match=r"key 'ppo.precision': value 'fp16' not allowed; choose one of fp32, bf16"):
        load_train_config(REPO_ROOT / "config" / "train.yaml", {"ppo.precision": "fp16"})
    changed = load_train_config(REPO_ROOT / "config" / "train.yaml", {"model.dense_size": 1024, "seed": 3})
    assert incompatible_keys(base, changed) == ["model.dense_size: 256 -> 1024", "seed: 0 -> 3"]


def test_episode_quotas_split_evenly():
    assert episode_quotas(10, 4).tolist() == [3, 3, 2, 2]
    assert episode_quotas(3, 3).tolist() == [1, 1, 1]


def test_summary_numbers_by_hand():
    successes = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 50.0])
    dropped = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    timed_out = np.array([0, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    summary = summarize(successes, dropped, timed_out, np.full(10, 100.0))
    assert summary["consecutive_successes"]["mean"] == pytest.approx(8.6)
    assert summary["consecutive_successes"]["median"] == pytest.approx(4.5)
    # numpy's linear interpolation: position 0.9 * 9 = 8.1 between 8 and 50
    assert summary["consecutive_successes"]["p90"] == pytest.approx(8 + 0.1 * 42)
    assert summary["drop_rate"] == pytest.approx(0.2) and summary["timeout_rate"] == pytest.approx(0.1)


def test_goals_by_angle_numbers_by_hand():
    angles = np.array([0.5, 0.7, 0.9, 1.19, 1.2, 2.5, np.pi])
    reached = np.array([1, 1, 0, 1, 0, 0, 1])
    steps = np.array([10, 30, 100, 41, 100, 100, 77])
    rows = goals_by_angle(angles, reached, steps, edges=(0.4, 0.8, 1.2, 2.8, np.pi))
    assert [row["angle_rad"] for row in rows] == [[0.4, 0.8], [0.8, 1.2], [1.2, 2.8], [2.8, np.pi]]
    assert [row["goals"] for row in rows] == [2, 2, 2, 1]
    assert [row["reached"] for row in rows] == [2, 1, 0, 1]
    assert [row["reach_rate"] for row in rows] == [1.0, 0.5, 0.0, 1.0]
    # median of 10 and 30; the 1.2-2.8 bin reached nothing; pi itself falls in the last bin
    assert [row["median_steps_to_reach"] for row in rows] == [20.0, 41.0, None, 77.0]
    assert goals_by_angle(np.array([]), np.array([]), np.array([]))[0]["reach_rate"] is None


def test_eval_counts_every_goal_of_its_episodes_by_the_angle_it_started_at(capsys):
    import json

    from policies.cli import eval_command

    shipped = str(REPO_ROOT / "assets/checkpoints/policy_z.pt")
    assert eval_command([shipped, "--episodes", "6", "--num-envs", "3", "--goal-mode", "xyz",
                         "--goal-max-angle", "1.0", "--config", str(REPO_ROOT / "config/env_nominal.yaml")]) == 0
    result = json.loads(capsys.readouterr().out)
    rows = result["goals_by_angle"]
    successes = round(result["consecutive_successes"]["mean"] * result["episodes"])
    # every success is a reached goal; every episode (none reaches the 50-success cap here) ends on one it missed
    assert sum(row["reached"] for row in rows) == successes
    assert sum(row["goals"] for row in rows) == successes + result["episodes"]
    # goals are set at least the 0.4 rad success threshold and at most the asked 1.0 rad away
    assert [row["goals"] > 0 for row in rows] == [False, True, True, False, False, False, False, False]


def test_eval_records_a_video_of_a_policy_trained_with_env_worker_processes(tmp_path, capsys):
    import json

    import torch

    from policies.cli import eval_command
    from policies.config import EnvSection, ModelConfig
    from policies.inference import inference_payload
    from policies.models import Actor, EnvSpec
    from sim import checkpoint
    from sim.batch import OBSERVATION_SIZES

    config = TrainConfig(env=EnvSection(goal_mode="z", num_workers=2), model=ModelConfig(dense_size=16, lstm_size=8))
    torch.manual_seed(0)
    actor = Actor(EnvSpec(OBSERVATION_SIZES["policy"], OBSERVATION_SIZES["critic"], "discrete", 20, 11), config.model)
    path = checkpoint.save(tmp_path / "policy.pt", "inference", inference_payload(actor, config))
    video = tmp_path / "episode.mp4"
    assert eval_command([str(path), "--episodes", "1", "--num-envs", "1", "--video", str(video)]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
    assert video.stat().st_size > 0


@pytest.mark.parametrize("bad", [0, -2, 65])
def test_a_bad_env_num_threads_is_refused_naming_the_key(bad):
    with pytest.raises(ConfigError, match=r"key 'env.num_threads': value .* outside allowed range \[1, 64\]"):
        load_train_config(REPO_ROOT / "config/train.yaml", {"env.num_threads": bad})


def test_eval_runs_at_fixed_ranges_of_full_randomization_unless_config_says_otherwise(tmp_path, capsys):
    import json

    import yaml

    from policies.cli import eval_command
    from policies.config import EnvSection
    from policies.sim_env import make_vec_env

    adr_yaml = tmp_path / "adr.yaml"
    adr_yaml.write_text(yaml.safe_dump({"randomization": {"mode": "adr"}}))
    section = EnvSection(config=str(adr_yaml), goal_mode="z", num_threads=1)
    with make_vec_env(section, 1, seed=0) as training, make_vec_env(section, 1, seed=0, fixed_ranges=True) as fixed:
        assert training.adr_table is not None and fixed.adr_table is None
        # at fixed ranges the episode draws use the configured (full) ranges: masses move off nominal
        nominal = fixed.batch.nominal.body_mass
        fixed.reset(0)
        assert not np.allclose(fixed.batch.models[0].body_mass, nominal)

    shipped = str(REPO_ROOT / "assets/checkpoints/policy_z.pt")
    assert eval_command([shipped, "--episodes", "1", "--num-envs", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["env_config"] == "config/env.yaml"
    nominal_yaml = str(REPO_ROOT / "config/env_nominal.yaml")
    assert eval_command([shipped, "--episodes", "1", "--num-envs", "1", "--config", nominal_yaml]) == 0
    assert json.loads(capsys.readouterr().out)["env_config"] == nominal_yaml
    assert eval_command([shipped, "--episodes", "1", "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_a_goal_curriculum_is_a_resumable_training_override_that_eval_ignores_unless_asked():
    import math
    from types import SimpleNamespace

    from policies.config import EnvSection
    from policies.evaluate import make_eval_env
    from policies.sim_env import section_env_config

    section = EnvSection(goal_mode="xyz", goal_max_angle_rad=1.2, num_threads=1)
    assert section_env_config(section).task.goal_max_angle_rad == 1.2
    assert section_env_config(EnvSection()).task.goal_max_angle_rad == math.pi
    narrow = load_train_config(REPO_ROOT / "config" / "train.yaml", {"env.goal_max_angle_rad": 1.0})
    wider = load_train_config(REPO_ROOT / "config" / "train.yaml", {"env.goal_max_angle_rad": 2.0})
    assert incompatible_keys(narrow, wider) == [] and incompatible_keys(narrow, TrainConfig()) == []
    with pytest.raises(ConfigError, match=r"env.goal_max_angle_rad.*outside allowed range"):
        load_train_config(REPO_ROOT / "config" / "train.yaml", {"env.goal_max_angle_rad": 0.1})
    # `inhand eval` tests the policy's goal mode on the whole task, whatever curriculum it trained under
    trained = SimpleNamespace(config=TrainConfig(env=section))
    env, used = make_eval_env(trained, 1, seed=0)  # type: ignore[arg-type]
    with env:
        assert used.goal_max_angle_rad is None and env.batch.config.task.goal_max_angle_rad == math.pi
        assert env.batch.config.task.goal_mode == "xyz"
    # ... or on the curriculum's goals when asked (--goal-max-angle)
    env, used = make_eval_env(trained, 1, seed=0, goal_max_angle_rad=1.0)  # type: ignore[arg-type]
    with env:
        assert used.goal_max_angle_rad == 1.0 and env.batch.config.task.goal_max_angle_rad == 1.0


def test_adr_thresholds_override_the_env_yaml_and_may_change_on_resume():
    from policies.config import EnvSection
    from policies.sim_env import section_env_config

    adr_yaml = str(REPO_ROOT / "config" / "env_adr.yaml")
    yaml_adr = section_env_config(EnvSection(config=adr_yaml)).randomization.adr
    assert (yaml_adr.high_threshold, yaml_adr.low_threshold) == (6.0, 2.0)
    both = section_env_config(EnvSection(config=adr_yaml, adr_high_threshold=3.0, adr_low_threshold=1.0))
    assert (both.randomization.adr.high_threshold, both.randomization.adr.low_threshold) == (3.0, 1.0)
    assert both.randomization.adr.buffer_size == yaml_adr.buffer_size and both.randomization.mode == "adr"
    # one threshold set: the other stays the YAML's
    high_only = section_env_config(EnvSection(config=adr_yaml, adr_high_threshold=4.0)).randomization.adr
    assert (high_only.high_threshold, high_only.low_threshold) == (4.0, 2.0)
    # a high threshold below the YAML's low one leaves no band between them
    with pytest.raises(ConfigError, match=r"low threshold \(2.0\) exceeds the high one \(1.5\)"):
        section_env_config(EnvSection(config=adr_yaml, adr_high_threshold=1.5))
    with pytest.raises(ConfigError, match="env.adr_low_threshold set, but config/env.yaml has randomization.mode "
                                          "fixed; the thresholds apply to adr only"):
        section_env_config(EnvSection(adr_low_threshold=1.0))
    lowered = load_train_config(REPO_ROOT / "config" / "train.yaml",
                                {"env.adr_high_threshold": 3.0, "env.adr_low_threshold": 1.0})
    assert incompatible_keys(TrainConfig(), lowered) == []
    with pytest.raises(ConfigError, match=r"env.adr_low_threshold.*outside allowed range"):
        load_train_config(REPO_ROOT / "config" / "train.yaml", {"env.adr_low_threshold": -1.0})
    # `inhand eval` tests an ADR run with its thresholds at the fixed ranges of config/env.yaml
    from types import SimpleNamespace

    from policies.evaluate import make_eval_env

    trained = SimpleNamespace(config=TrainConfig(env=EnvSection(config=adr_yaml, goal_mode="z", num_threads=1,
                                                                adr_high_threshold=3.0, adr_low_threshold=1.0)))
    env, used = make_eval_env(trained, 1, seed=0)  # type: ignore[arg-type]
    with env:
        assert used.config is None and used.adr_high_threshold is None and used.adr_low_threshold is None
        assert env.batch.config.randomization.mode == "fixed" and env.adr_table is None


def test_eval_goal_max_angle_is_reported_and_a_bad_one_is_refused(capsys):
    import json

    from policies.cli import eval_command

    shipped = str(REPO_ROOT / "assets/checkpoints/policy_z.pt")
    near = [shipped, "--episodes", "1", "--num-envs", "1", "--goal-mode", "xyz"]
    assert eval_command([*near, "--goal-max-angle", "1.2"]) == 0
    assert json.loads(capsys.readouterr().out)["goal_max_angle_rad"] == 1.2
    assert eval_command([*near, "--goal-max-angle", "4"]) == 2
    assert capsys.readouterr().err.strip() == ("inhand eval: --goal-max-angle (4.0): give an angle in radians in "
                                               "[0.5, pi], as env.goal_max_angle_rad takes")
    # the training key's bound: an angle a run could not train on is not evaluated either
    assert eval_command([*near, "--goal-max-angle", "0.45"]) == 2
    assert "--goal-max-angle (0.45)" in capsys.readouterr().err
    # z goals are yaws of the upright cube: a limit on how far xyz goals may be does not apply to them
    assert eval_command([*near[:-2], "--goal-max-angle", "1.2"]) == 2
    assert "limits xyz goals only" in capsys.readouterr().err
