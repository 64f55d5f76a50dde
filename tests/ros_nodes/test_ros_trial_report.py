"""A run's trials as the goal manager judged them beside the sim's truth, and the safety filter's counts."""
from __future__ import annotations

import numpy as np

from ros_nodes.trial_report import judge_truth, safety_summary, trials_from_statuses


def status(trial: int, state: str, successes: int, time_s: float, last: tuple | None = None) -> dict:
    last_trial = None if last is None else dict(zip(("trial", "successes", "ended_by", "started_s", "ended_s"), last))
    return {"trial": trial, "state": state, "successes": successes, "time_s": time_s, "last_trial": last_trial}


def test_trials_from_the_goal_managers_statuses_beside_the_sims_truth() -> None:
    statuses = [
        status(0, "waiting", 0, 0.5),
        status(1, "running", 2, 1.2),
        status(1, "resetting", 3, 4.0, (1, 3, "timeout", 1.1, 4.0)),
        status(1, "waiting", 3, 5.0, (1, 3, "timeout", 1.1, 4.0)),
        status(2, "running", 0, 5.1),
        status(2, "resetting", 5, 9.0, (2, 5, "max_successes", 5.1, 9.0)),
        status(3, "running", 1, 9.5),
        status(3, "running", 4, 11.0),
    ]
    trials = trials_from_statuses(statuses)
    assert trials == [(1, 3, "timeout", 1.1, 4.0), (2, 5, "max_successes", 5.1, 9.0), (3, 4, "stopped", 9.5, 11.0)]
    # the true cube: on the palm, below 0.10 m from 2.5 s to 3.0 s (trial 1: a drop the goal manager missed), again
    # at 4.5 s (between trials: not counted)
    times = np.arange(0.0, 12.0, 0.5)
    heights = np.where(((times >= 2.5) & (times <= 3.0)) | (times == 4.5), 0.03, 0.15)
    judged = judge_truth(trials, times, heights, 0.10)
    assert [(t.fell_in_sim, t.fell_at_s) for t in judged] == [(True, 2.5), (False, None), (False, None)]
    assert judged[0].to_json() == {"trial": 1, "successes": 3, "ended_by": "timeout", "duration_s": 2.9,
                                   "sim_truth": {"dropped": True, "dropped_after_s": 1.4}}
    assert trials_from_statuses([]) == []


def test_safety_summary_from_the_drivers_diagnostics() -> None:
    values = {"commanded_periods": "400", "altered_periods": "3", "limit_hits": "1", "rate_limited_periods": "2",
              "clamped_joints": "rh_FFJ0", "enabled": "true"}
    assert safety_summary(values) == {"commanded_periods": 400, "altered_periods": 3, "limit_hits": 1,
                                      "rate_limited_periods": 2, "clamped_joints": "rh_FFJ0",
                                      "altered_fraction": 0.0075}
    assert safety_summary({})["altered_fraction"] is None
