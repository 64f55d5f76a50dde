"""A rollout worker: one VecEnv stepped by a PPO's actor and critic for T steps at a time."""
from __future__ import annotations

import numpy as np
import torch

from policies.ppo import PPO
from sim.contract import EPISODE_DONE, EPISODE_KEYS, FINAL_CRITIC, OPTIONAL_EPISODE_KEYS, VecEnv, check_step

Episodes = dict[str, np.ndarray]


def join_episodes(parts: list[Episodes]) -> Episodes:
    """Concatenate the finished-episode records of several rollouts or workers (optional keys where all have them)."""
    keys = [*EPISODE_KEYS, *(key for key in OPTIONAL_EPISODE_KEYS if parts and all(key in part for part in parts))]
    return {key: np.concatenate([part[key] for part in parts]) if parts else np.zeros(0) for key in keys}


class RolloutWorker:
    """Owns a VecEnv; fills its PPO's storage with T steps and computes their returns."""

    def __init__(self, env: VecEnv, ppo: PPO, num_steps: int, lstm_size: int) -> None:
        self.env, self.ppo = env, ppo
        self.num_envs = env.num_envs
        self.sizes = dict(env.observation_sizes)
        ppo.init_storage(num_steps, self.num_envs, lstm_size)
        self.observations: dict[str, np.ndarray] | None = None

    def restart(self, seed: int) -> None:
        """Reset every env with `seed`, zero the LSTM states and reseed action sampling."""
        self.observations = self.env.reset(seed=seed)
        self.ppo.start(self.num_envs, seed)

    def collect(self) -> Episodes:
        """Fill the storage with one rollout and its returns; the episodes that finished during it."""
        if self.observations is None:
            raise RuntimeError("RolloutWorker.collect before restart(seed)")
        storage = self.ppo.storage
        storage.clear()
        episodes = []
        keys: list[str] | None = None
        observations = self.observations
        while not storage.full:
            actions = self.ppo.act(self._tensor(observations["policy"]), self._tensor(observations["critic"]))
            if self.ppo.actor.spec.action_type == "continuous":
                # the sample itself is stored for its log-probability; the env gets it clipped to the Box
                actions = actions.clamp(-1.0, 1.0)
            observations, rewards, terminated, truncated, info = self.env.step(actions.cpu().numpy())
            check_step(self.num_envs, observations, rewards, terminated, truncated, info, self.sizes)
            self.ppo.process_step(self._tensor(rewards), self._tensor(terminated, torch.bool),
                                  self._tensor(truncated, torch.bool), self._tensor(info[FINAL_CRITIC]))
            done = np.asarray(info[EPISODE_DONE], dtype=bool)
            if keys is None:  # the VecEnv's info keys do not change between steps
                keys = [*EPISODE_KEYS, *(key for key in OPTIONAL_EPISODE_KEYS if key in info)]
            # every step adds its (maybe empty) records, so the optional keys survive a rollout where none ended
            episodes.append({key: np.asarray(info[key])[done].astype(np.float64) for key in keys})
        self.observations = observations
        self.ppo.compute_returns(self._tensor(observations["critic"]))
        return join_episodes(episodes)

    def close(self) -> None:
        """Close the VecEnv."""
        self.env.close()

    def _tensor(self, array: np.ndarray, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        return torch.as_tensor(np.asarray(array), dtype=dtype, device=self.ppo.device)
