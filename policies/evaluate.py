"""Evaluate a policy on a VecEnv: a fixed episode quota per env (so short episodes are not over-counted)."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from policies.config import EnvSection
from policies.inference import InferencePolicy
from sim.config_loading import ConfigError
from sim.contract import (CONSECUTIVE_SUCCESSES, DROPPED, EPISODE_DONE, EPISODE_LENGTH, IS_SUCCESS, TIMED_OUT,
                          VecEnv, check_step)
from sim.media import write_video

# video frame rate: the control rate (80 ms per step), so the video plays in real time
VIDEO_FPS = 12.5
# bins (rad) of `goals_by_angle`: how far each goal was from the cube when it was set; goals are set at least the
# success threshold away (Dactyl's 0.4 rad), so the first bin stays empty unless an env YAML lowers it
GOAL_ANGLE_EDGES = (0.0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 2.8, math.pi)


def make_eval_env(policy: InferencePolicy, num_envs: int, seed: int, env_config: str | None = None,
                  goal_mode: str | None = None,
                  goal_max_angle_rad: float | None = None) -> tuple[VecEnv, EnvSection]:
    """The env `inhand eval` tests a policy in: its env factory in this process (physics threads, renders for
    videos), for the inhand sim the env YAML `env_config` (default config/env.yaml, Dactyl's full randomization)
    always at its fixed ranges, in the policy's goal mode unless `goal_mode` is given, with goals as far as the
    env YAML lets them be (the whole task, whatever curriculum the policy trained under) unless
    `goal_max_angle_rad` is given; and the env section used."""
    from policies.sim_env import make_vec_env
    from policies.env_factory import make_env

    section = policy.config.env
    sim_factory = section.factory == EnvSection().factory
    if sim_factory:
        section = dataclasses.replace(section, config=env_config)
    elif env_config:
        raise ConfigError(f"--config: the policy trained on env.factory {section.factory!r}, which takes no "
                          "inhand env YAML")
    if goal_mode:
        section = dataclasses.replace(section, goal_mode=goal_mode)
    # fixed ranges: a run's ADR thresholds have nothing to move here
    section = dataclasses.replace(section, num_workers=0, goal_max_angle_rad=goal_max_angle_rad,
                                  adr_high_threshold=None, adr_low_threshold=None)
    if sim_factory:
        return make_vec_env(section, num_envs, seed, fixed_ranges=True), section
    return make_env(section, num_envs, seed), section


def episode_quotas(episodes: int, num_envs: int) -> np.ndarray:
    """Episodes each env contributes (N,): as even as possible, summing to `episodes`."""
    quotas = np.full(num_envs, episodes // num_envs)
    quotas[: episodes % num_envs] += 1
    return quotas


def summarize(successes: np.ndarray, dropped: np.ndarray, timed_out: np.ndarray,
              lengths: np.ndarray) -> dict[str, Any]:
    """Mean / median / p90 of consecutive successes per episode, drop and time-out rates."""
    return {"episodes": int(successes.size),
            "consecutive_successes": {"mean": float(np.mean(successes)), "median": float(np.median(successes)),
                                      "p90": float(np.percentile(successes, 90))},
            "drop_rate": float(np.mean(dropped)), "timeout_rate": float(np.mean(timed_out)),
            "episode_length_mean": float(np.mean(lengths))}


def goals_by_angle(angles: np.ndarray, reached: np.ndarray, steps: np.ndarray,
                   edges: tuple[float, ...] = GOAL_ANGLE_EDGES) -> list[dict[str, Any]]:
    """Per bin of the angle each goal started at: goals set, goals reached, the reach rate (None for no goals) and
    the median control steps a reached goal took (None for none). The last bin includes its upper edge."""
    angles, reached, steps = np.asarray(angles), np.asarray(reached, dtype=bool), np.asarray(steps)
    rows = []
    for index, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = index == len(edges) - 2
        inside = (angles >= low) & ((angles <= high) if last else (angles < high))
        hits = inside & reached
        rows.append({"angle_rad": [float(low), float(high)], "goals": int(inside.sum()), "reached": int(hits.sum()),
                     "reach_rate": float(hits.sum() / inside.sum()) if inside.any() else None,
                     "median_steps_to_reach": float(np.median(steps[hits])) if hits.any() else None})
    return rows


def episode_records(policy: InferencePolicy, env: VecEnv, episodes: int, seed: int = 0,
                    deterministic: bool = True, frames: list[np.ndarray] | None = None,
                    goal_angle: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Run until every env finished its quota; per episode (in the order they ended): successes, dropped,
    timed_out, lengths. With `frames`, env 0's first episode is appended to it as RGB frames. With `goal_angle`
    (critic observations (N, C) -> each cube's angle to its goal (N,)), per goal of those episodes as well:
    goal_angles (the angle when it was set), goal_reached, goal_steps (control steps spent on it)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    num_envs = env.num_envs
    quotas = episode_quotas(episodes, num_envs)
    counts = np.zeros(num_envs, dtype=np.int64)
    records: dict[str, list[float]] = {"successes": [], "dropped": [], "timed_out": [], "lengths": []}
    if goal_angle is not None:
        records.update(goal_angles=[], goal_reached=[], goal_steps=[])
    observations = env.reset(seed=seed)
    policy.reset(num_envs)
    if goal_angle is not None:
        start_angle = goal_angle(observations["critic"])
        steps_on_goal = np.zeros(num_envs, dtype=np.int64)
    while np.any(counts < quotas):
        if frames is not None and counts[0] == 0:
            frames.append(np.asarray(env.render(0)))  # type: ignore[attr-defined]
        actions = policy.act(observations["policy"], deterministic=deterministic)
        observations, rewards, terminated, truncated, info = env.step(actions)
        check_step(num_envs, observations, rewards, terminated, truncated, info, env.observation_sizes)
        policy.reset_envs(np.asarray(terminated) | np.asarray(truncated))
        if goal_angle is not None:
            # a goal ends when it is reached (the env sets the next) or with its episode; the observation after
            # this step already shows the next goal, or the next episode's first
            steps_on_goal += 1
            reached = np.asarray(info[IS_SUCCESS], dtype=bool)
            ended = reached | np.asarray(info[EPISODE_DONE], dtype=bool)
            for index in np.flatnonzero(ended & (counts < quotas)):
                records["goal_angles"].append(float(start_angle[index]))
                records["goal_reached"].append(float(reached[index]))
                records["goal_steps"].append(float(steps_on_goal[index]))
            if ended.any():
                start_angle[ended] = goal_angle(np.asarray(observations["critic"])[ended])
                steps_on_goal[ended] = 0
        for index in np.flatnonzero(np.asarray(info[EPISODE_DONE])):
            if counts[index] < quotas[index]:
                records["successes"].append(float(info[CONSECUTIVE_SUCCESSES][index]))
                records["dropped"].append(float(info[DROPPED][index]))
                records["timed_out"].append(float(info[TIMED_OUT][index]))
                records["lengths"].append(float(info[EPISODE_LENGTH][index]))
            counts[index] += 1
    return {key: np.array(values) for key, values in records.items()}


def evaluate(policy: InferencePolicy, env: VecEnv, episodes: int, seed: int = 0, deterministic: bool = True,
             video: str | Path | None = None,
             goal_angle: Callable[[np.ndarray], np.ndarray] | None = None) -> dict[str, Any]:
    """Run until every env finished its quota; the summary, with `goal_angle` (see episode_records) its goals by
    starting angle, and env 0's first episode as an MP4 if asked."""
    if video is not None and not callable(getattr(env, "render", None)):
        raise ValueError(f"--video needs a VecEnv with render(env_index) -> (H, W, 3) uint8; "
                         f"{type(env).__name__} has none")
    frames: list[np.ndarray] | None = [] if video is not None else None
    records = episode_records(policy, env, episodes, seed, deterministic, frames, goal_angle)
    summary = summarize(*(records[key] for key in ("successes", "dropped", "timed_out", "lengths")))
    if goal_angle is not None:
        summary["goals_by_angle"] = goals_by_angle(records["goal_angles"], records["goal_reached"],
                                                   records["goal_steps"])
    if video is not None:
        summary["video"] = str(write_video(video, frames, fps=VIDEO_FPS))
    return summary
