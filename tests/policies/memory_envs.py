"""Small VecEnvs implementing the sim.contract VecEnv, for tests (and their env.factory functions)."""
from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np

from policies.config import EnvSection, TrainConfig, load_train_config
from sim import contract
from sim.contract import VecEnv

MEMORY_DELAY = 4
REPO_ROOT = Path(__file__).resolve().parents[2]


class MemoryVecEnv(VecEnv):
    """Recall a cue: step 0 shows +-1, `delay` blank steps later the action must name it (bin 1 for +1).

    policy obs (2): [cue at step 0 else 0, 1 at the query step else 0]
    critic obs (3): [cue, step / delay, 1]: privileged, the critic always sees the cue.
    The query step pays 1 when right, 0 when wrong, and ends the episode (terminated, or truncated if chosen).
    """

    def __init__(self, num_envs: int, delay: int = MEMORY_DELAY, seed: int = 0, ending: str = "terminated",
                 continuous: bool = False) -> None:
        self.num_envs = num_envs
        self.delay = delay
        self.ending = ending
        self.observation_sizes = {"policy": 2, "critic": 3}
        self.single_action_space = (gymnasium.spaces.Box(-1.0, 1.0, (1,), np.float32) if continuous
                                    else gymnasium.spaces.MultiDiscrete([2]))
        self.continuous = continuous
        self.rng = np.random.default_rng(seed)
        self.steps = np.zeros(num_envs, dtype=np.int64)
        self.cues = np.ones(num_envs, dtype=np.float32)
        self.returns = np.zeros(num_envs)
        self.streak = np.zeros(num_envs, dtype=np.int64)
        self.closed = False

    def reset(self, seed: int | None = None) -> dict[str, np.ndarray]:
        """All envs at step 0 with fresh cues."""
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.steps[:] = 0
        self.cues = self.rng.choice(np.array([-1.0, 1.0], dtype=np.float32), self.num_envs)
        self.returns[:] = 0.0
        self.streak[:] = 0
        return self._observations()

    def _observations(self) -> dict[str, np.ndarray]:
        policy = np.zeros((self.num_envs, 2), dtype=np.float32)
        policy[:, 0] = np.where(self.steps == 0, self.cues, 0.0)
        policy[:, 1] = (self.steps == self.delay).astype(np.float32)
        critic = np.stack([self.cues, self.steps / self.delay, np.ones(self.num_envs)], axis=1).astype(np.float32)
        return {"policy": policy, "critic": critic}

    def step(self, actions: np.ndarray):
        """Advance every env; envs past their query step restart with a new cue."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs, 1):
            raise ValueError(f"actions shape {actions.shape}, expected {(self.num_envs, 1)}")
        chosen = np.where(actions[:, 0] > 0, 1.0, -1.0) if self.continuous else np.where(actions[:, 0] == 1, 1.0, -1.0)
        query = self.steps == self.delay
        correct = query & (chosen == self.cues)
        rewards = correct.astype(np.float32)
        self.returns += rewards
        self.steps += 1
        final_critic = self._observations()["critic"]
        done = query
        info = {contract.FINAL_CRITIC: final_critic, contract.EPISODE_DONE: done.copy(),
                # at an episode's last step: the successes of that episode
                contract.CONSECUTIVE_SUCCESSES: np.where(done, correct.astype(np.int64), self.streak),
                contract.EPISODE_RETURN: np.where(done, self.returns, 0.0),
                contract.EPISODE_LENGTH: np.where(done, self.steps, 0),
                contract.DROPPED: np.zeros(self.num_envs, dtype=bool),
                contract.TIMED_OUT: done & (self.ending == "truncated")}
        self.streak = np.where(done, 0, self.streak)
        if done.any():
            self.steps[done] = 0
            self.returns[done] = 0.0
            self.cues[done] = self.rng.choice(np.array([-1.0, 1.0], dtype=np.float32), int(done.sum()))
        terminated = done & (self.ending == "terminated")
        truncated = done & (self.ending == "truncated")
        return self._observations(), rewards, terminated, truncated, info

    def render(self, env_index: int = 0) -> np.ndarray:
        """A (32, 48, 3) uint8 frame: green for cue +1, red for -1, brighter at the query step."""
        frame = np.zeros((32, 48, 3), dtype=np.uint8)
        level = 255 if self.steps[env_index] == self.delay else 120
        frame[..., 1 if self.cues[env_index] > 0 else 0] = level
        return frame

    def close(self) -> None:
        """Nothing to release."""
        self.closed = True


def make_memory_env(section: EnvSection, num_envs: int, seed: int) -> MemoryVecEnv:
    """env.factory for the discrete memory task."""
    return MemoryVecEnv(num_envs, seed=seed)


def make_memory_env_continuous(section: EnvSection, num_envs: int, seed: int) -> MemoryVecEnv:
    """env.factory for the memory task with a Box action (positive = +1)."""
    return MemoryVecEnv(num_envs, seed=seed, continuous=True)


def memory_config(**overrides: object) -> TrainConfig:
    """A small TrainConfig on the memory task that learns in a few seconds; dotted-key overrides."""
    values = {"env.factory": "tests.policies.memory_envs:make_memory_env", "env.num_envs": 32,
              "model.dense_size": 32, "model.lstm_size": 32, "runner.rollout_steps": 20,
              "runner.total_updates": 20, "runner.checkpoint_every": 10, "ppo.gamma": 0.9,
              "ppo.num_minibatches": 2, "ppo.learning_rate": 3e-3, **overrides}
    return load_train_config(REPO_ROOT / "config" / "train.yaml", values)
