"""Evaluate a policy on a VecEnv: a fixed episode quota per env (so short episodes are not over-counted)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from policies.inference import InferencePolicy
from sim.contract import (CONSECUTIVE_SUCCESSES, DROPPED, EPISODE_DONE, EPISODE_LENGTH, TIMED_OUT, VecEnv,
                          check_step)
from sim.media import write_video

# video frame rate: the control rate (80 ms per step), so the video plays in real time
VIDEO_FPS = 12.5


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


def evaluate(policy: InferencePolicy, env: VecEnv, episodes: int, seed: int = 0, deterministic: bool = True,
             video: str | Path | None = None) -> dict[str, Any]:
    """Run until every env finished its quota; the summary, and env 0's first episode as an MP4 if asked."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if video is not None and not callable(getattr(env, "render", None)):
        raise ValueError(f"--video needs a VecEnv with render(env_index) -> (H, W, 3) uint8; "
                         f"{type(env).__name__} has none")
    num_envs = env.num_envs
    quotas = episode_quotas(episodes, num_envs)
    counts = np.zeros(num_envs, dtype=np.int64)
    records: dict[str, list[float]] = {"successes": [], "dropped": [], "timed_out": [], "lengths": []}
    frames: list[np.ndarray] = []
    observations = env.reset(seed=seed)
    policy.reset(num_envs)
    while np.any(counts < quotas):
        if video is not None and counts[0] == 0:
            frames.append(np.asarray(env.render(0)))
        actions = policy.act(observations["policy"], deterministic=deterministic)
        observations, rewards, terminated, truncated, info = env.step(actions)
        check_step(num_envs, observations, rewards, terminated, truncated, info, env.observation_sizes)
        policy.reset_envs(np.asarray(terminated) | np.asarray(truncated))
        for index in np.flatnonzero(np.asarray(info[EPISODE_DONE])):
            if counts[index] < quotas[index]:
                records["successes"].append(float(info[CONSECUTIVE_SUCCESSES][index]))
                records["dropped"].append(float(info[DROPPED][index]))
                records["timed_out"].append(float(info[TIMED_OUT][index]))
                records["lengths"].append(float(info[EPISODE_LENGTH][index]))
            counts[index] += 1
    summary = summarize(*(np.array(records[key]) for key in ("successes", "dropped", "timed_out", "lengths")))
    if video is not None:
        summary["video"] = str(write_video(video, frames, fps=VIDEO_FPS))
    return summary
