"""PPO for recurrent actor-critic: act and process_step fill the storage, update optimizes on whole sequences."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from policies.config import ModelConfig, PPOConfig
from policies.models import Actor, Critic, EnvSpec
from policies.storage import Minibatch, RolloutStorage


class PPO:
    """Clipped-surrogate PPO with entropy bonus, per-minibatch advantage normalization, normalized value targets."""

    def __init__(self, actor: Actor, critic: Critic, config: PPOConfig, seed: int,
                 device: torch.device | str = "cpu") -> None:
        self.actor, self.critic, self.config = actor, critic, config
        self.device = torch.device(device)
        self.optimizer = torch.optim.Adam(self.parameters(), lr=config.learning_rate, eps=config.adam_eps)
        # minibatch order; its state is part of a checkpoint
        self.rng = np.random.default_rng(seed)
        # action sampling; reseeded whenever the envs restart, so a segment's rollouts depend only on its seed
        self.generator = torch.Generator(device=self.device)
        self.storage: RolloutStorage | None = None

    def parameters(self) -> list[nn.Parameter]:
        """Actor then critic parameters (one optimizer for both)."""
        return list(self.actor.parameters()) + list(self.critic.parameters())

    def init_storage(self, num_steps: int, num_envs: int, lstm_size: int) -> None:
        """Allocate the rollout storage that act / process_step fill."""
        self.storage = RolloutStorage(num_steps, num_envs, self.actor.spec, lstm_size, self.config.chunk_len,
                                      self.device)

    def start(self, num_envs: int, seed: int) -> None:
        """Zero the LSTM states of `num_envs` envs and reseed action sampling."""
        self.actor.memory.start(num_envs, self.device)
        self.critic.memory.start(num_envs, self.device)
        self.generator.manual_seed(seed)

    @torch.no_grad()
    def act(self, policy_obs: torch.Tensor, critic_obs: torch.Tensor) -> torch.Tensor:
        """Sample actions (N, A) for raw observations (N, P), (N, C) and record the step."""
        storage = self._storage()
        actor_state, critic_state = self.actor.memory.held_state(), self.critic.memory.held_state()
        params = self.actor.step(policy_obs)
        actions, log_probs = self.actor.head.sample_and_log_prob(params, self.generator)
        values = self.critic.denormalize(self.critic.step(critic_obs))
        storage.add_action(policy_obs, critic_obs, actions, log_probs, values, actor_state, critic_state)
        return actions

    @torch.no_grad()
    def process_step(self, rewards: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor,
                     final_critic_obs: torch.Tensor) -> None:
        """Record rewards and episode ends (N,); value the final state of timed-out envs; reset finished envs."""
        timeout_values = torch.zeros_like(rewards)
        rows = torch.nonzero(truncated & ~terminated).squeeze(-1)
        if rows.numel():
            timeout_values[rows] = self.critic.denormalize(self.critic.peek(final_critic_obs[rows], rows))
        self._storage().add_outcome(rewards, terminated, truncated, timeout_values)
        dones = terminated | truncated
        self.actor.memory.reset(dones)
        self.critic.memory.reset(dones)

    @torch.no_grad()
    def compute_returns(self, critic_obs: torch.Tensor) -> None:
        """GAE for the filled storage, bootstrapped with the value of the next raw critic observation (N, C)."""
        storage = self._storage()
        rows = torch.arange(storage.num_envs, device=self.device)
        last_values = self.critic.denormalize(self.critic.peek(critic_obs, rows))
        storage.compute_returns(last_values, self.config.gamma, self.config.gae_lambda)

    def evaluate(self, batch: Minibatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Re-run both networks over a minibatch in BPTT chunks -> log_probs, entropy, normalized values (T, B)."""
        steps, envs = batch.log_probs.shape
        chunk_len = self.config.chunk_len
        chunks = steps // chunk_len

        def to_chunks(x: torch.Tensor) -> torch.Tensor:
            # (T, B, ...) -> (L, K*B, ...): every chunk becomes its own sequence, started from its stored state
            return x.reshape(chunks, chunk_len, envs, *x.shape[2:]).transpose(0, 1).reshape(
                chunk_len, chunks * envs, *x.shape[2:])

        def from_chunks(x: torch.Tensor) -> torch.Tensor:
            return x.reshape(chunk_len, chunks, envs, *x.shape[2:]).transpose(0, 1).reshape(
                steps, envs, *x.shape[2:])

        def flat(state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
            return state[0].reshape(chunks * envs, -1), state[1].reshape(chunks * envs, -1)

        dones = to_chunks(batch.dones)
        bf16 = self.config.precision == "bf16"
        params = from_chunks(self.actor.unroll(to_chunks(batch.policy_obs), flat(batch.actor_states), dones, bf16))
        values = from_chunks(self.critic.unroll(to_chunks(batch.critic_obs), flat(batch.critic_states), dones, bf16))
        return (*self.actor.head.log_prob_and_entropy(params, batch.actions), values)

    def update(self, storage: RolloutStorage | None = None) -> dict[str, float]:
        """Optimize on a full storage with returns computed, then fold its observations into the normalizers."""
        storage = storage or self._storage()
        config = self.config
        self.critic.value_normalizer.update(storage.returns.reshape(-1, 1))
        totals = {"policy_loss": 0.0, "value_loss": 0.0, "entropy": 0.0, "approx_kl": 0.0, "clip_fraction": 0.0,
                  "grad_norm": 0.0}
        count = 0
        for _ in range(config.epochs):
            for batch in storage.minibatches(config.num_minibatches, self.rng):
                log_probs, entropy, values = self.evaluate(batch)
                advantages = batch.advantages
                advantages = (advantages - advantages.mean()) / (advantages.std(unbiased=False) + 1e-8)
                log_ratio = log_probs - batch.log_probs
                ratio = log_ratio.exp()
                surrogate = torch.min(ratio * advantages,
                                      ratio.clamp(1.0 - config.clip, 1.0 + config.clip) * advantages)
                policy_loss = -surrogate.mean()
                targets = self.critic.value_normalizer(batch.returns.unsqueeze(-1)).squeeze(-1)
                value_loss = 0.5 * (values - targets).pow(2).mean()
                entropy_mean = entropy.mean()
                loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy_mean
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = nn.utils.clip_grad_norm_(self.parameters(), config.max_grad_norm)
                self.optimizer.step()
                with torch.no_grad():
                    totals["policy_loss"] += policy_loss.item()
                    totals["value_loss"] += value_loss.item()
                    totals["entropy"] += entropy_mean.item()
                    totals["approx_kl"] += ((ratio - 1.0) - log_ratio).mean().item()
                    totals["clip_fraction"] += ((ratio - 1.0).abs() > config.clip).float().mean().item()
                    totals["grad_norm"] += float(grad_norm)
                count += 1
        self.actor.normalizer.update(storage.policy_obs.reshape(-1, storage.policy_obs.shape[-1]))
        self.critic.normalizer.update(storage.critic_obs.reshape(-1, storage.critic_obs.shape[-1]))
        stats = {name: value / count for name, value in totals.items()}
        stats["explained_variance"] = explained_variance(storage.values, storage.returns)
        stats["value_mean"] = storage.values.mean().item()
        stats["return_mean"] = storage.returns.mean().item()
        return stats

    def _storage(self) -> RolloutStorage:
        if self.storage is None:
            raise RuntimeError("PPO has no rollout storage: call init_storage(...) first")
        return self.storage


def explained_variance(predicted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - Var(target - predicted) / Var(target); NaN when the targets do not vary."""
    target_var = target.var(unbiased=False).item()
    if target_var == 0.0:
        return float("nan")
    return 1.0 - (target - predicted).var(unbiased=False).item() / target_var


def build_ppo(spec: EnvSpec, model: ModelConfig, config: PPOConfig, seed: int,
              device: torch.device | str = "cpu") -> PPO:
    """Fresh actor, critic and PPO learner; parameter init draws from torch's RNG seeded with `seed`."""
    torch.manual_seed(seed)
    actor = Actor(spec, model).to(device)
    critic = Critic(spec, model).to(device)
    return PPO(actor, critic, config, seed, device)
