"""The contract between an env and a learner: the VecEnv protocol, the info keys of a step, and its shape check.

sim's vectorized envs implement it and policies consumes it; it imports no MuJoCo, so any env a config's
env.factory names can implement it too. Every VecEnv auto-resets finished envs and returns arrays over all envs:
    reset(seed) -> {"policy": (N, P), "critic": (N, C)} float32
    step(actions (N, A)) -> observation, reward (N,), terminated (N,), truncated (N,), info {key: (N, ...)}
`inhand eval --video` also needs render(env_index) -> (H, W, 3) uint8; training never renders.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from sim.adr import AdrTable

# info keys every step carries
EPISODE_DONE = "episode_done"  # (N,) bool: the env's episode ended in this step (and the env restarted)
FINAL_CRITIC = "final_critic"  # (N, C): critic observation of the state before an auto-reset, to bootstrap time-outs
# info keys that hold the finished episode's figures in the rows where EPISODE_DONE is true
EPISODE_RETURN = "episode_return"
EPISODE_LENGTH = "episode_length"
CONSECUTIVE_SUCCESSES = "consecutive_successes"
DROPPED = "dropped"
TIMED_OUT = "timed_out"
EPISODE_KEYS = (EPISODE_RETURN, EPISODE_LENGTH, CONSECUTIVE_SUCCESSES, DROPPED, TIMED_OUT)
# ... and one a VecEnv may add: the ADR boundary the episode evaluated (sim.adr.NO_BOUNDARY: none)
ADR_BOUNDARY = "adr_boundary"
OPTIONAL_EPISODE_KEYS = (ADR_BOUNDARY,)
# per-step diagnostics of the inhand sim, which no learner needs
IS_SUCCESS = "is_success"
PHYSICS_ERROR = "physics_error"
MUJOCO_WARNINGS = "mujoco_warnings"

StepReturn = tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]
# what policies.env_factory checks a factory's result for
VECENV_MEMBERS = ("num_envs", "observation_sizes", "single_action_space", "reset", "step", "close")


class VecEnv(Protocol):
    """N envs stepped together; observation dicts {"policy": (N, P), "critic": (N, C)} float32; auto-reset.

    A class may implement it by shape alone; one that subclasses it also gets the defaults below.
    """

    num_envs: int
    observation_sizes: dict[str, int]
    single_action_space: Any
    # the boundaries automatic domain randomization moves; None when the ranges are fixed
    adr_table: AdrTable | None = None

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Start new episodes everywhere; a seed makes the whole run reproducible."""

    def step(self, actions: np.ndarray) -> StepReturn:
        """actions (N, A) -> observation (after auto-reset), reward (N,), terminated (N,), truncated (N,), info."""

    def close(self) -> None:
        """Release workers and simulations."""

    def set_adr_values(self, values: np.ndarray) -> None:
        """ADR boundary values (K,) for the episodes that start from now on."""
        raise ValueError(f"{type(self).__name__} has fixed randomization ranges; set randomization.mode: adr")

    def __enter__(self) -> VecEnv:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def check_step(num_envs: int, observations: dict[str, np.ndarray], rewards: np.ndarray, terminated: np.ndarray,
               truncated: np.ndarray, info: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    """Raise a ValueError naming the first output of VecEnv.step that breaks the contract's shapes."""
    expected = {"obs['policy']": (observations.get("policy"), (num_envs, sizes["policy"])),
                "obs['critic']": (observations.get("critic"), (num_envs, sizes["critic"])),
                "rewards": (rewards, (num_envs,)), "terminated": (terminated, (num_envs,)),
                "truncated": (truncated, (num_envs,)),
                f"info[{FINAL_CRITIC!r}]": (info.get(FINAL_CRITIC), (num_envs, sizes["critic"])),
                f"info[{EPISODE_DONE!r}]": (info.get(EPISODE_DONE), (num_envs,))}
    for name, (value, shape) in expected.items():
        if value is None or np.shape(value) != shape:
            raise ValueError(f"VecEnv.step: {name} has shape {None if value is None else np.shape(value)}, "
                             f"the VecEnv contract needs {shape}")
    if np.any(info[EPISODE_DONE]):
        missing = [key for key in EPISODE_KEYS if key not in info]
        if missing:
            raise ValueError(f"VecEnv.step: episodes ended but info lacks {missing}")
