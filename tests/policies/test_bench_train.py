"""`inhand bench train` on tiny sizes: the JSON's keys, parameter counts computed by hand, and every figure's
relation to the seconds and sample counts it is derived from."""
from __future__ import annotations

import importlib.util
import json
import sys

import pytest

from policies.bench import main
from sim.cores import default_num_threads

TINY = ["--updates", "1", "--rounds", "1", "--set", "env.num_envs=2", "--set", "runner.rollout_steps=10",
        "--set", "ppo.chunk_len=5", "--set", "ppo.num_minibatches=2", "--set", "ppo.epochs=1",
        "--set", "model.dense_size=16", "--set", "model.lstm_size=8"]
SIDE_KEYS = {"rollout_samples_per_s", "update_samples_per_s", "whole_loop_samples_per_s",
             "whole_loop_samples_per_s_per_round", "env_step_samples_per_s", "policy_and_storage_samples_per_s",
             "rollout_fraction", "env_step_fraction_of_rollout", "seconds", "updates_timed", "samples_per_update",
             "samples_timed", "parameters", "action_space", "env"}
SB3_MISSING = importlib.util.find_spec("sb3_contrib") is None

# policy observation 22 (fingertips 15, object position 3, relative goal 4), critic observation 84; 20 actuators,
# 11 bins; dense 16, LSTM 8. A torch LSTM cell has 4H (D + H) weights and two 4H bias vectors.
ACTOR_TRUNK = (22 * 16 + 16) + (4 * 8 * (16 + 8) + 2 * 4 * 8)        # 368 + 832
CRITIC = (84 * 16 + 16) + (4 * 8 * (16 + 8) + 2 * 4 * 8) + (8 + 1)    # 1360 + 832 + 9
OURS_DISCRETE = ACTOR_TRUNK + (8 * 20 * 11 + 20 * 11) + CRITIC          # categorical head: 20 x 11 logits
OURS_CONTINUOUS = ACTOR_TRUNK + (8 * 20 + 20) + 20 + CRITIC             # Gaussian means + log std
# RecurrentPPO with our shape: its critic reads the policy observation, so its trunk is the actor's
PEER = 2 * ACTOR_TRUNK + (8 * 20 + 20) + 20 + (8 + 1)


def run_bench(capsys, *extra: str) -> dict:
    assert main(TINY + list(extra)) == 0
    return json.loads(capsys.readouterr().out)


def numbers(value):
    if isinstance(value, dict):
        for item in value.values():
            yield from numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from numbers(item)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield value


def check_side(side: dict, parameters: int, action_space: str) -> None:
    assert set(side) == SIDE_KEYS
    assert all(number > 0 for number in numbers(side))
    assert side["samples_per_update"] == 2 * 10 and side["updates_timed"] == 1 and side["samples_timed"] == 20
    assert side["parameters"] == parameters
    assert side["action_space"] == action_space
    seconds = side["seconds"]
    # the whole loop holds the rollout and the update; the rollout holds the env steps
    assert seconds["whole_loop"] >= seconds["rollout"] + seconds["update"]
    assert seconds["rollout"] > seconds["env_step"]
    # each rate is the timed samples over its own seconds; one round, so the per-round rate is the whole one
    assert side["whole_loop_samples_per_s"] == 20 / seconds["whole_loop"]
    assert side["whole_loop_samples_per_s_per_round"] == [side["whole_loop_samples_per_s"]]
    assert side["rollout_samples_per_s"] == 20 / seconds["rollout"]
    assert side["update_samples_per_s"] == 20 / seconds["update"]
    assert side["env_step_samples_per_s"] == 20 / seconds["env_step"]
    assert side["policy_and_storage_samples_per_s"] == 20 / (seconds["rollout"] - seconds["env_step"])
    assert side["rollout_fraction"] == seconds["rollout"] / seconds["whole_loop"]
    assert side["env_step_fraction_of_rollout"] == seconds["env_step"] / seconds["rollout"]
    assert seconds["between_rollout_and_update"] == seconds["whole_loop"] - seconds["rollout"] - seconds["update"]


def check_machine_figures(result: dict) -> None:
    """The top-level figures: ours against the physics limit of the same cores, and per core."""
    whole_loop = result["ours"]["whole_loop_samples_per_s"]
    assert result["whole_loop_samples_per_s"] == whole_loop
    assert result["physics_limit_fraction"] == whole_loop / result["physics_limit_samples_per_s"]
    # 2 envs x 10 steps of 80 ms simulated per 20 samples
    assert result["sim_seconds_per_wall_second_per_core"] == pytest.approx(
        whole_loop * 0.08 / default_num_threads(), rel=1e-12)
    assert result["physics_limit_samples_per_s"] > 0 and result["resident_mb_per_env"] > 0


@pytest.mark.skipif(SB3_MISSING, reason="sb3-contrib not installed")
def test_both_sides_report_positive_figures_for_the_same_sizes(capsys):
    result = run_bench(capsys)
    assert {"ours", "ours_continuous", "recurrent_ppo", "ratio_whole_loop", "ratio_rollout", "ratio_update",
            "ratio_whole_loop_continuous", "config", "notes", "versions", "cpu_count"} <= set(result)
    check_side(result["ours"], OURS_DISCRETE, "discrete 20 x 11 bins")
    check_side(result["ours_continuous"], OURS_CONTINUOUS, "continuous Box(20)")
    check_side(result["recurrent_ppo"], PEER, "continuous Box(20)")
    assert "inhand/ReorientContinuous-v0" in result["recurrent_ppo"]["env"]
    for ratio, side, key in (("ratio_whole_loop", "ours", "whole_loop_samples_per_s"),
                             ("ratio_rollout", "ours", "rollout_samples_per_s"),
                             ("ratio_update", "ours", "update_samples_per_s"),
                             ("ratio_whole_loop_continuous", "ours_continuous", "whole_loop_samples_per_s")):
        assert result[ratio] == result[side][key] / result["recurrent_ppo"][key], ratio
    check_machine_figures(result)
    config = result["config"]
    assert (config["num_envs"], config["rollout_steps"], config["batch_samples"], config["minibatch_samples"],
            config["epochs"], config["dense_size"], config["lstm_size"]) == (2, 10, 20, 10, 1, 16, 8)
    assert any("asymmetric critic" in note for note in result["notes"])
    assert result["versions"]["sb3_contrib"] and result["versions"]["torch"] and result["cpu_count"] >= 1


def test_our_side_alone_needs_no_sb3(capsys):
    result = run_bench(capsys, "--no-peer", "--set", "env.goal_mode=z")
    check_side(result["ours"], OURS_DISCRETE, "discrete 20 x 11 bins")
    check_side(result["ours_continuous"], OURS_CONTINUOUS, "continuous Box(20)")
    assert result["recurrent_ppo"] is None and result["ratio_whole_loop"] is None
    check_machine_figures(result)
    assert result["config"]["goal_mode"] == "z" and result["config"]["peer_layout"] is None


def test_missing_sb3_names_the_extra_to_install(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sb3_contrib", None)
    assert main(TINY) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "pip install inhand[bench]" in captured.err


@pytest.mark.parametrize("flag", ["--updates", "--rounds"])
def test_fewer_than_one_update_or_round_is_refused(capsys, flag):
    assert main(TINY + [flag, "0"]) == 2
    assert f"{flag} (0)" in capsys.readouterr().err
