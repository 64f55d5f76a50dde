"""The only contract with sim: a VecEnv protocol, and building one from the config's "module:function" factory.

`inhand eval --video` also needs render(env_index) -> (H, W, 3) uint8 on the VecEnv; training never renders.
"""
from __future__ import annotations

import importlib
import inspect
from typing import Any, Protocol

import numpy as np

from policies.config import EnvSection
from sim.config_loading import ConfigError

# what make_env checks a factory's result for: the VecEnv protocol below
VECENV_MEMBERS = ("num_envs", "observation_sizes", "single_action_space", "reset", "step", "close")
# info keys filled in the rows where info["episode_done"] is true
EPISODE_KEYS = ("episode_return", "episode_length", "consecutive_successes", "dropped", "timed_out")
# ... and those a VecEnv may add: the ADR boundary the episode evaluated (-1: none)
OPTIONAL_EPISODE_KEYS = ("adr_boundary",)


class VecEnv(Protocol):
    """N envs stepped together; obs dicts {"policy": (N, P), "critic": (N, C)} float32; auto-reset."""

    num_envs: int
    observation_sizes: dict[str, int]
    single_action_space: Any

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """Reset every env; obs after reset."""

    def step(self, actions: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, np.ndarray,
                                                 dict[str, np.ndarray]]:
        """actions (N, A) -> obs (after auto-reset), rewards (N,), terminated (N,), truncated (N,), info."""

    def close(self) -> None:
        """Release workers and resources."""


def make_env(section: EnvSection, num_envs: int, seed: int) -> VecEnv:
    """Call the config's factory "module:function" as function(section, num_envs, seed); the result must be a VecEnv.

    This imports and runs code named by a config file: only train or evaluate configs and checkpoints you trust."""
    module_name, _, function_name = section.factory.partition(":")
    accepted = "a function(env_section, num_envs, seed) -> VecEnv, as 'module:function'"
    try:
        factory = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"key 'env.factory' {section.factory!r} cannot be loaded: {error}; "
                          f"expected {accepted}") from None
    if not callable(factory):
        raise ConfigError(f"key 'env.factory' {section.factory!r} is a {type(factory).__name__}; expected {accepted}")
    try:
        inspect.signature(factory).bind(section, num_envs, seed)
    except TypeError:
        raise ConfigError(f"key 'env.factory' {section.factory!r} does not take (env_section, num_envs, seed); "
                          f"expected {accepted}") from None
    except ValueError:
        pass  # a builtin without a signature: calling it tells
    env = factory(section, num_envs, seed)
    missing = [name for name in VECENV_MEMBERS if not hasattr(env, name)]
    if missing:
        if hasattr(env, "close"):
            env.close()
        raise ConfigError(f"key 'env.factory' {section.factory!r} returned a {type(env).__name__}, not a VecEnv "
                          f"(it lacks {', '.join(missing)}); expected {accepted}")
    if env.num_envs != num_envs:
        raise ValueError(f"env.factory {section.factory!r} made {env.num_envs} envs, {num_envs} were asked for")
    return env


def check_step(num_envs: int, observations: dict[str, np.ndarray], rewards: np.ndarray, terminated: np.ndarray,
               truncated: np.ndarray, info: dict[str, np.ndarray], sizes: dict[str, int]) -> None:
    """Raise a ValueError naming the first output of VecEnv.step that breaks the contract's shapes."""
    expected = {"obs['policy']": (observations.get("policy"), (num_envs, sizes["policy"])),
                "obs['critic']": (observations.get("critic"), (num_envs, sizes["critic"])),
                "rewards": (rewards, (num_envs,)), "terminated": (terminated, (num_envs,)),
                "truncated": (truncated, (num_envs,)),
                "info['final_critic']": (info.get("final_critic"), (num_envs, sizes["critic"])),
                "info['episode_done']": (info.get("episode_done"), (num_envs,))}
    for name, (value, shape) in expected.items():
        if value is None or np.shape(value) != shape:
            raise ValueError(f"VecEnv.step: {name} has shape {None if value is None else np.shape(value)}, "
                             f"the VecEnv contract needs {shape}")
    if np.any(info["episode_done"]):
        missing = [key for key in EPISODE_KEYS if key not in info]
        if missing:
            raise ValueError(f"VecEnv.step: episodes ended but info lacks {missing}")
