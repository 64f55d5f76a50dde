"""`inhand bench fidelity`'s figures from hand-built trials, and its eval loop on the shipped policy."""
from __future__ import annotations

import json

import pytest

from ros_nodes.bench_fidelity import loop_summary, main, mann_whitney_p


def test_loop_summary_of_hand_built_trials() -> None:
    # five trials: two cubes fell in the sim, the goal manager reported one of them and one drop that did not happen
    summary = loop_summary([0, 3, 1, 7, 2], [True, False, True, False, False], [True, False, False, False, True])
    assert summary == {"trials": 5, "successes": [0, 3, 1, 7, 2], "successes_mean": 2.6, "successes_median": 2.0,
                       "drop_rate": 0.4, "drops_in_sim": 2, "drops_detected_rate": 0.5, "false_drops": 1}
    assert loop_summary([1], [False], [False])["drops_detected_rate"] is None


def test_mann_whitney_p_values() -> None:
    # no overlap between 3 and 3 values: U = 0, the most extreme of the 20 equally likely splits on either side
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert mann_whitney_p([1, 2, 3, 4], [1, 2, 3, 4]) == pytest.approx(1.0)


def test_the_eval_loop_alone(capsys) -> None:
    assert main(["--trials", "2", "--loops", "eval", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    evaluation = result["loops"]["eval"]
    assert evaluation["trials"] == 2 and len(evaluation["successes"]) == 2
    assert evaluation["drops_detected_rate"] in (None, 1.0)  # the env's own rule ends its episodes on a drop
    assert result["safety_altered_fraction"] is None  # no ROS loop ran


def test_the_nodes_loop_alone(capsys) -> None:
    assert main(["--trials", "2", "--loops", "eval", "nodes", "--seed", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    nodes = result["loops"]["nodes"]
    assert nodes["trials"] == 2 and nodes["safety"]["commanded_periods"] > 0
    assert 0.0 <= nodes["p_value_nodes_vs_eval"] <= 1.0
    assert result["safety_altered_fraction"] is None  # only the ROS loops count here
