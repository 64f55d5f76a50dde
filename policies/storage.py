"""Rollout storage: T steps of N envs, GAE with time-out bootstrapping, minibatches of whole env sequences."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from policies.models import EnvSpec
from policies.modules import LSTMState

# per-step fields, each (T, N, ...)
STEP_FIELDS = ("policy_obs", "critic_obs", "actions", "log_probs", "values", "rewards", "terminated", "truncated",
               "timeout_values", "advantages", "returns")
# LSTM states at the start of each BPTT chunk, each (T / chunk_len, N, H); chunk 0 is the rollout-start snapshot
STATE_FIELDS = ("actor_hidden", "actor_cell", "critic_hidden", "critic_cell")


def generalized_advantages(rewards: torch.Tensor, values: torch.Tensor, last_values: torch.Tensor,
                           terminated: torch.Tensor, truncated: torch.Tensor, timeout_values: torch.Tensor,
                           gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over (T, N) steps -> (advantages, returns), each (T, N).

    A terminal step bootstraps with 0; a truncated (timed-out) one with timeout_values, the value of its final
    state; either way no advantage flows back across the episode boundary. last_values (N,) bootstraps step T-1.
    """
    advantages = torch.zeros_like(rewards)
    next_advantage = torch.zeros_like(last_values)
    next_value = last_values
    for step in reversed(range(rewards.shape[0])):
        done = terminated[step] | truncated[step]
        bootstrap = torch.where(truncated[step], timeout_values[step], next_value)
        bootstrap = torch.where(terminated[step], torch.zeros_like(bootstrap), bootstrap)
        delta = rewards[step] + gamma * bootstrap - values[step]
        next_advantage = delta + gamma * lam * (~done).to(rewards.dtype) * next_advantage
        advantages[step] = next_advantage
        next_value = values[step]
    return advantages, advantages + values


@dataclass
class Minibatch:
    """Whole sequences of B envs: step fields (T, B, ...), chunk-start states (K, B, H)."""

    policy_obs: torch.Tensor
    critic_obs: torch.Tensor
    actions: torch.Tensor
    log_probs: torch.Tensor
    values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    dones: torch.Tensor
    actor_states: LSTMState
    critic_states: LSTMState


class RolloutStorage:
    """Preallocated (T, N, ...) tensors filled one step at a time by PPO.act / PPO.process_step."""

    def __init__(self, num_steps: int, num_envs: int, spec: EnvSpec, lstm_size: int, chunk_len: int,
                 device: torch.device | str = "cpu") -> None:
        if num_steps % chunk_len:
            raise ValueError(f"num_steps ({num_steps}) must be a multiple of chunk_len ({chunk_len})")
        self.num_steps, self.num_envs, self.chunk_len = num_steps, num_envs, chunk_len
        shape = (num_steps, num_envs)
        action_dtype = torch.int64 if spec.action_type == "discrete" else torch.float32
        self.policy_obs = torch.zeros(*shape, spec.policy_size, device=device)
        self.critic_obs = torch.zeros(*shape, spec.critic_size, device=device)
        self.actions = torch.zeros(*shape, spec.num_actions, dtype=action_dtype, device=device)
        for name in ("log_probs", "values", "rewards", "timeout_values", "advantages", "returns"):
            setattr(self, name, torch.zeros(shape, device=device))
        self.terminated = torch.zeros(shape, dtype=torch.bool, device=device)
        self.truncated = torch.zeros(shape, dtype=torch.bool, device=device)
        chunks = num_steps // chunk_len
        for name in STATE_FIELDS:
            setattr(self, name, torch.zeros(chunks, num_envs, lstm_size, device=device))
        self.step = 0

    def clear(self) -> None:
        """Start filling from step 0 again."""
        self.step = 0

    @property
    def full(self) -> bool:
        """Whether all T steps are filled."""
        return self.step == self.num_steps

    def add_action(self, policy_obs: torch.Tensor, critic_obs: torch.Tensor, actions: torch.Tensor,
                   log_probs: torch.Tensor, values: torch.Tensor, actor_state: LSTMState,
                   critic_state: LSTMState) -> None:
        """Record what the policy saw and did at the current step; states are those it started the step with."""
        if self.full:
            raise RuntimeError(f"rollout storage is full ({self.num_steps} steps); clear() it first")
        if self.step % self.chunk_len == 0:
            chunk = self.step // self.chunk_len
            self.actor_hidden[chunk], self.actor_cell[chunk] = actor_state
            self.critic_hidden[chunk], self.critic_cell[chunk] = critic_state
        self.policy_obs[self.step] = policy_obs
        self.critic_obs[self.step] = critic_obs
        self.actions[self.step] = actions
        self.log_probs[self.step] = log_probs
        self.values[self.step] = values

    def add_outcome(self, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
                    timeout_values: torch.Tensor) -> None:
        """Record the env's answer to the current step and move to the next."""
        self.rewards[self.step] = rewards
        self.terminated[self.step] = terminated
        self.truncated[self.step] = truncated
        self.timeout_values[self.step] = timeout_values
        self.step += 1

    @property
    def dones(self) -> torch.Tensor:
        """(T, N) episode ended at this step (terminal or time-out): the LSTM state is zeroed after it."""
        return self.terminated | self.truncated

    def compute_returns(self, last_values: torch.Tensor, gamma: float, lam: float) -> None:
        """Fill advantages and returns from the recorded steps and the value (N,) of the next observation."""
        if not self.full:
            raise RuntimeError(f"rollout incomplete: {self.step} of {self.num_steps} steps recorded")
        self.advantages, self.returns = generalized_advantages(
            self.rewards, self.values, last_values, self.terminated, self.truncated, self.timeout_values, gamma, lam
        )

    def minibatches(self, num_minibatches: int, rng: np.random.Generator) -> Iterator[Minibatch]:
        """Random disjoint groups of N / num_minibatches envs, each with all T steps of its envs."""
        if self.num_envs % num_minibatches:
            raise ValueError(f"{self.num_envs} envs do not split into {num_minibatches} equal minibatches")
        order = torch.as_tensor(rng.permutation(self.num_envs), device=self.values.device)
        for envs in order.chunk(num_minibatches):
            yield self.select(envs)

    def select(self, envs: torch.Tensor) -> Minibatch:
        """The minibatch of the given env indices (B,)."""
        return Minibatch(
            policy_obs=self.policy_obs[:, envs], critic_obs=self.critic_obs[:, envs], actions=self.actions[:, envs],
            log_probs=self.log_probs[:, envs], values=self.values[:, envs], advantages=self.advantages[:, envs],
            returns=self.returns[:, envs], dones=self.dones[:, envs],
            actor_states=(self.actor_hidden[:, envs], self.actor_cell[:, envs]),
            critic_states=(self.critic_hidden[:, envs], self.critic_cell[:, envs]),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """All fields as numpy arrays (for sending from a rollout worker)."""
        return {name: getattr(self, name).cpu().numpy() for name in STEP_FIELDS + STATE_FIELDS}

    @classmethod
    def from_arrays(cls, parts: list[dict[str, np.ndarray]], spec: EnvSpec, lstm_size: int, chunk_len: int,
                    device: torch.device | str = "cpu") -> RolloutStorage:
        """Join full rollouts of several workers along the env axis."""
        num_steps = parts[0]["rewards"].shape[0]
        num_envs = sum(part["rewards"].shape[1] for part in parts)
        storage = cls(num_steps, num_envs, spec, lstm_size, chunk_len, device)
        for name in STEP_FIELDS + STATE_FIELDS:
            joined = np.concatenate([part[name] for part in parts], axis=1)
            setattr(storage, name, torch.as_tensor(joined, device=device))
        storage.step = num_steps
        return storage
