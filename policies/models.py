"""Actor and critic: separate networks of the same shape (normalizer -> dense ReLU -> LSTM -> head)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from policies.config import ModelConfig
from policies.modules import CategoricalHead, GaussianHead, LSTMState, RecurrentCell, RunningNormalizer


@dataclass(frozen=True)
class EnvSpec:
    """What the networks need to know about a VecEnv: observation sizes and the action space."""

    policy_size: int
    critic_size: int
    # "discrete": num_actions actuators of num_bins bins each; "continuous": num_actions values in [-1, 1]
    action_type: str
    num_actions: int
    num_bins: int = 0

    @classmethod
    def from_env(cls, env: Any) -> EnvSpec:
        """Read a VecEnv's observation_sizes and single_action_space (MultiDiscrete with equal bins, or Box)."""
        import gymnasium

        sizes = env.observation_sizes
        missing = {"policy", "critic"} - set(sizes)
        if missing:
            raise ValueError(f"VecEnv observation_sizes lacks {sorted(missing)}; got keys {sorted(sizes)}")
        space = env.single_action_space
        if isinstance(space, gymnasium.spaces.MultiDiscrete):
            nvec = np.asarray(space.nvec).reshape(-1)
            if len(set(nvec.tolist())) != 1 or nvec[0] < 2:
                raise ValueError(f"MultiDiscrete action space needs the same bin count >= 2 per actuator, got {nvec}")
            return cls(int(sizes["policy"]), int(sizes["critic"]), "discrete", int(nvec.size), int(nvec[0]))
        if isinstance(space, gymnasium.spaces.Box):
            if not (np.all(space.low == -1.0) and np.all(space.high == 1.0)) or len(space.shape) != 1:
                raise ValueError(f"Box action space must be 1-D with bounds [-1, 1], got {space}")
            return cls(int(sizes["policy"]), int(sizes["critic"]), "continuous", int(space.shape[0]))
        raise ValueError(f"unsupported action space {space!r}: use MultiDiscrete or Box")

    def to_mapping(self) -> dict[str, Any]:
        """Plain-data form, for checkpoints."""
        return {"policy_size": self.policy_size, "critic_size": self.critic_size, "action_type": self.action_type,
                "num_actions": self.num_actions, "num_bins": self.num_bins}


class Actor(nn.Module):
    """Policy observation (N, P) -> action distribution parameters: logits (N, A, K) or Gaussian means (N, A)."""

    def __init__(self, spec: EnvSpec, config: ModelConfig) -> None:
        super().__init__()
        self.spec = spec
        self.normalizer = RunningNormalizer(spec.policy_size, clip=config.observation_clip)
        self.encoder = nn.Sequential(nn.Linear(spec.policy_size, config.dense_size), nn.ReLU())
        self.memory = RecurrentCell(config.dense_size, config.lstm_size, remember=config.memory == "lstm")
        if spec.action_type == "discrete":
            self.head: CategoricalHead | GaussianHead = CategoricalHead(config.lstm_size, spec.num_actions,
                                                                        spec.num_bins)
        else:
            self.head = GaussianHead(config.lstm_size, spec.num_actions, config.initial_log_std)

    def forward(self, observation: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """One step from a raw observation (B, P) and state (h, c) -> distribution parameters, new state."""
        features, state = self.memory(self.encoder(self.normalizer(observation)), state)
        return self.head(features), state

    def step(self, observation: torch.Tensor) -> torch.Tensor:
        """Rollout step on the held LSTM state: raw observation (N, P) -> distribution parameters."""
        return self.head(self.memory.step(self.encoder(self.normalizer(observation))))

    def unroll(self, observations: torch.Tensor, state: LSTMState, dones: torch.Tensor,
               bf16: bool = False) -> torch.Tensor:
        """Raw observations (L, B, P) from `state`, resets after dones (L, B) -> parameters (L, B, ...); bf16 runs
        the encoder and LSTM under bfloat16 autocast, the head in float32."""
        return self.head(unroll_features(self, observations, state, dones, bf16))


class Critic(nn.Module):
    """Critic observation (N, C) -> value; trained on normalized targets, value_normalizer holds their stats."""

    def __init__(self, spec: EnvSpec, config: ModelConfig) -> None:
        super().__init__()
        self.normalizer = RunningNormalizer(spec.critic_size, clip=config.observation_clip)
        self.value_normalizer = RunningNormalizer(1, clip=None)
        self.encoder = nn.Sequential(nn.Linear(spec.critic_size, config.dense_size), nn.ReLU())
        self.memory = RecurrentCell(config.dense_size, config.lstm_size, remember=config.memory == "lstm")
        self.head = nn.Linear(config.lstm_size, 1)

    def forward(self, observation: torch.Tensor, state: LSTMState) -> tuple[torch.Tensor, LSTMState]:
        """One step from a raw observation (B, C) and state -> normalized value (B,), new state."""
        features, state = self.memory(self.encoder(self.normalizer(observation)), state)
        return self.head(features).squeeze(-1), state

    def step(self, observation: torch.Tensor) -> torch.Tensor:
        """Rollout step on the held LSTM state: raw observation (N, C) -> normalized value (N,)."""
        return self.head(self.memory.step(self.encoder(self.normalizer(observation)))).squeeze(-1)

    def peek(self, observation: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Normalized value (R,) of raw observations (R, C) for env rows (R,), leaving the held state as it is."""
        hidden, cell = self.memory.held_state()
        value, _ = self(observation, (hidden[rows], cell[rows]))
        return value

    def unroll(self, observations: torch.Tensor, state: LSTMState, dones: torch.Tensor,
               bf16: bool = False) -> torch.Tensor:
        """Raw observations (L, B, C) from `state`, resets after dones (L, B) -> normalized values (L, B); bf16 as
        in Actor.unroll."""
        return self.head(unroll_features(self, observations, state, dones, bf16)).squeeze(-1)

    def denormalize(self, value: torch.Tensor) -> torch.Tensor:
        """Normalized values (...) -> values in reward units (...)."""
        return self.value_normalizer.denormalize(value.unsqueeze(-1)).squeeze(-1)


def unroll_features(network: Actor | Critic, observations: torch.Tensor, state: LSTMState, dones: torch.Tensor,
                    bf16: bool) -> torch.Tensor:
    """The LSTM outputs (L, B, H) of `network` over raw observations, float32. With bf16 the encoder and LSTM run
    under bfloat16 autocast (their matrix products are most of an update's time); the normalizer stays outside it,
    and the head that follows gets float32 features, so its product and the losses run in float32."""
    normalized = network.normalizer(observations)
    with torch.autocast(normalized.device.type, dtype=torch.bfloat16, enabled=bf16):
        features = network.memory.unroll(network.encoder(normalized), state, dones)
    return features.float()
