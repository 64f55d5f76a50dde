"""What a recorded run of the sim system says about its trials: the goal manager's outcomes, beside the outcome the
sim's truth gives (did the cube really fall?), and how often the driver's safety filter changed a command.

The goal manager's trial/status carries each finished trial with its start and end in sim time; object/pose_true
carries the cube's true pose stamped in sim time; the driver's /diagnostics carry its safety counters. A trial's
cube fell in the sim when its true height went below the task's drop height between the trial's start and end.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ros_nodes.bag import BagReader

SAFETY_KEYS = ("commanded_periods", "altered_periods", "limit_hits", "rate_limited_periods", "clamped_joints")


@dataclass(frozen=True)
class Trial:
    """One trial as the goal manager judged it, and what the sim's truth says."""

    trial: int
    successes: int
    ended_by: str  # "drop", "timeout", "max_successes", or "stopped" (still running when the run ended)
    started_s: float
    ended_s: float
    fell_in_sim: bool  # the true cube went below the drop height during the trial
    fell_at_s: float | None  # when it first did

    def to_json(self) -> dict[str, Any]:
        """The demo's and the fidelity benchmark's form."""
        return {"trial": self.trial, "successes": self.successes, "ended_by": self.ended_by,
                "duration_s": round(self.ended_s - self.started_s, 3),
                "sim_truth": {"dropped": self.fell_in_sim,
                              "dropped_after_s": None if self.fell_at_s is None
                              else round(self.fell_at_s - self.started_s, 3)}}


def trials_from_statuses(statuses: list[dict[str, Any]]) -> list[tuple[int, int, str, float, float]]:
    """(trial, successes, ended_by, started_s, ended_s) of every trial in a trial/status sequence; a trial still
    running at the end is 'stopped' at the last status's time."""
    finished: dict[int, tuple[int, int, str, float, float]] = {}
    for status in statuses:
        last = status.get("last_trial")
        if last:
            finished.setdefault(int(last["trial"]), (int(last["trial"]), int(last["successes"]), str(last["ended_by"]),
                                                     float(last["started_s"]), float(last["ended_s"])))
    trials = [finished[number] for number in sorted(finished)]
    if statuses and statuses[-1]["state"] == "running":
        last = statuses[-1]
        started = _running_start(statuses, int(last["trial"]))
        trials.append((int(last["trial"]), int(last["successes"]), "stopped", started, float(last["time_s"])))
    return trials


def _running_start(statuses: list[dict[str, Any]], trial: int) -> float:
    """The time of the first status that shows `trial` running: within a status period of its start."""
    return next(float(s["time_s"]) for s in statuses if int(s["trial"]) == trial and s["state"] == "running")


def judge_truth(trials: list[tuple[int, int, str, float, float]], true_times: np.ndarray, true_heights: np.ndarray,
                drop_height_m: float) -> list[Trial]:
    """Each trial with whether (and when) the true cube fell below drop_height_m within it."""
    judged = []
    for number, successes, ended_by, started, ended in trials:
        within = (true_times >= started) & (true_times <= ended) & (true_heights < drop_height_m)
        fell_at = float(true_times[within][0]) if within.any() else None
        judged.append(Trial(number, successes, ended_by, started, ended, fell_at is not None, fell_at))
    return judged


def safety_summary(values: dict[str, str]) -> dict[str, Any]:
    """The driver's safety counters from its newest /diagnostics values, with the share of commanded control
    periods in which the filter changed the command."""
    summary: dict[str, Any] = {key: values[key] for key in SAFETY_KEYS if key in values}
    for key in SAFETY_KEYS[:-1]:
        if key in summary:
            summary[key] = int(summary[key])
    commanded = summary.get("commanded_periods", 0)
    summary["altered_fraction"] = round(summary.get("altered_periods", 0) / commanded, 6) if commanded else None
    return summary


def read_run(bag: str | Path, drop_height_m: float) -> dict[str, Any]:
    """From a bag of the sim system: its trials (goal manager beside sim truth) and the driver's safety summary."""
    times, heights, statuses, driver_values = [], [], [], {}
    with BagReader(bag) as reader:
        wanted = [topic for topic in ("/trial/status", "/object/pose_true", "/diagnostics") if topic in reader.topics]
        for record in reader.messages(wanted):
            message = record.message
            if record.topic == "/trial/status":
                statuses.append(json.loads(message.data))
            elif record.topic == "/object/pose_true":
                times.append(message.header.stamp.to_ns() / 1e9)
                heights.append(message.pose.position.z)
            else:
                for status in message.status:
                    if status.hardware_id.startswith("shadow_hand_"):
                        driver_values = {kv.key: kv.value for kv in status.values}
    trials = judge_truth(trials_from_statuses(statuses), np.array(times), np.array(heights), drop_height_m)
    return {"trials": trials, "safety": safety_summary(driver_values), "statuses": statuses}
