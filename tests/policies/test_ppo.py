"""PPO on recurrent actor-critic: input separation, snapshot replay, time-out bootstrapping, the memory task."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from policies.models import EnvSpec
from policies.ppo import build_ppo
from policies.rollout import RolloutWorker
from policies.runner import LocalBackend, Runner
from tests.policies.memory_envs import MEMORY_DELAY, MemoryVecEnv, memory_config


def rollout(config, env, num_steps, seed=0, sharpen=True):
    """A PPO with a non-trivial random policy and one collected rollout of `env`."""
    ppo = build_ppo(EnvSpec.from_env(env), config.model, config.ppo, seed)
    if sharpen:
        with torch.no_grad():
            ppo.actor.head.linear.weight.normal_(0.0, 1.0)
            ppo.critic.head.weight.normal_(0.0, 1.0)
            ppo.critic.value_normalizer.update(torch.tensor([[0.0], [2.0]]))
    worker = RolloutWorker(env, ppo, num_steps, config.model.lstm_size)
    worker.restart(seed)
    worker.collect()
    return ppo


def test_actor_reads_only_policy_obs_and_critic_only_critic_obs():
    config = memory_config(**{"ppo.chunk_len": 4})
    ppo = rollout(config, MemoryVecEnv(4), num_steps=8)
    batch = ppo.storage.select(torch.arange(4))
    batch.policy_obs.requires_grad_(True)
    batch.critic_obs.requires_grad_(True)
    log_probs, entropy, values = ppo.evaluate(batch)
    policy_grad, critic_grad = torch.autograd.grad((log_probs + entropy).sum(), (batch.policy_obs, batch.critic_obs),
                                                   allow_unused=True)
    assert policy_grad.abs().sum() > 0 and (critic_grad is None or critic_grad.abs().sum() == 0)
    policy_grad, critic_grad = torch.autograd.grad(values.sum(), (batch.policy_obs, batch.critic_obs),
                                                   allow_unused=True)
    assert critic_grad.abs().sum() > 0 and (policy_grad is None or policy_grad.abs().sum() == 0)


def test_perturbing_one_observation_moves_only_its_network():
    config = memory_config()
    ppo = build_ppo(EnvSpec(2, 3, "discrete", 1, 2), config.model, config.ppo, seed=0)
    ppo.init_storage(10, 3, config.model.lstm_size)
    policy_obs, critic_obs = torch.randn(3, 2), torch.randn(3, 3)
    results = []
    for p_obs, c_obs in ((policy_obs, critic_obs), (policy_obs, critic_obs + 1.0), (policy_obs + 1.0, critic_obs)):
        ppo.start(3, seed=7)
        ppo.storage.clear()
        ppo.act(p_obs, c_obs)
        results.append((ppo.storage.log_probs[0].clone(), ppo.storage.values[0].clone()))
    (log_probs, values), (log_probs_c, values_c), (log_probs_p, values_p) = results
    assert torch.equal(log_probs, log_probs_c) and not torch.equal(values, values_c)
    assert torch.equal(values, values_p) and not torch.equal(log_probs, log_probs_p)


def test_chunk_snapshots_reproduce_the_rollout_log_probs_values_and_logits():
    # episodes of 5 steps cross the chunks of 3: state carried into chunks, resets inside them; float32 updates
    # re-evaluate exactly what the rollout computed (bf16 ones within its rounding, tested below)
    config = memory_config(**{"ppo.chunk_len": 3, "runner.rollout_steps": 12, "ppo.precision": "fp32"})
    ppo = rollout(config, MemoryVecEnv(6), num_steps=12)
    storage = ppo.storage
    assert storage.dones.any()
    log_probs, _, values = ppo.evaluate(storage.select(torch.arange(6)))
    torch.testing.assert_close(log_probs, storage.log_probs, atol=1e-5, rtol=0)
    torch.testing.assert_close(ppo.critic.denormalize(values), storage.values, atol=1e-5, rtol=0)
    assert storage.log_probs.std() > 0.1  # a sharp policy, so equal log-probs are not a coincidence
    # the rollout-start snapshot alone, unrolled over all 12 steps, gives the same logits as the chunks
    whole = ppo.actor.unroll(storage.policy_obs, (storage.actor_hidden[0], storage.actor_cell[0]), storage.dones)
    for chunk in range(4):
        steps = slice(3 * chunk, 3 * chunk + 3)
        part = ppo.actor.unroll(storage.policy_obs[steps], (storage.actor_hidden[chunk], storage.actor_cell[chunk]),
                                storage.dones[steps])
        torch.testing.assert_close(part, whole[steps], atol=1e-5, rtol=0)


def test_timed_out_steps_bootstrap_with_the_critic_value_of_the_final_state():
    config = memory_config(**{"ppo.chunk_len": 5})
    ppo = rollout(config, MemoryVecEnv(3, ending="truncated"), num_steps=10)
    storage, critic = ppo.storage, ppo.critic
    assert storage.truncated.sum() == 6 and not storage.terminated.any()
    state = (storage.critic_hidden[0], storage.critic_cell[0])
    with torch.no_grad():
        for step in range(10):
            _, state = critic(storage.critic_obs[step], state)
            for env in torch.nonzero(storage.truncated[step]).flatten().tolist():
                final = torch.tensor([[storage.critic_obs[step, env, 0], (MEMORY_DELAY + 1) / MEMORY_DELAY, 1.0]])
                value, _ = critic(final, (state[0][env:env + 1], state[1][env:env + 1]))
                expected = critic.denormalize(value)[0]
                torch.testing.assert_close(storage.timeout_values[step, env], expected, atol=1e-5, rtol=0)
            keep = (~storage.dones[step]).float().unsqueeze(-1)
            state = (state[0] * keep, state[1] * keep)
    assert torch.all(storage.timeout_values[~storage.truncated] == 0)
    assert storage.timeout_values[storage.truncated].abs().min() > 0


def train_memory(tmp_path, memory: str) -> list[dict]:
    config = memory_config(**{"model.memory": memory, "runner.total_updates": 20, "runner.checkpoint_every": 20})
    runner = Runner(config, LocalBackend(config), tmp_path / memory, progress=False)
    runner.train()
    runner.backend.close()
    return runner.metrics.rows


def test_lstm_ppo_solves_the_memory_task_and_a_feed_forward_control_cannot(tmp_path):
    lstm = [row["successes_mean"] for row in train_memory(tmp_path, "lstm")]
    feed_forward = [row["successes_mean"] for row in train_memory(tmp_path, "none")]
    # chance is 0.5: without memory the cue is gone by the query step
    assert np.mean(lstm[-3:]) >= 0.95, lstm
    assert np.mean(feed_forward[-5:]) <= 0.7, feed_forward


def test_gaussian_head_solves_the_memory_task_on_a_box_action_space(tmp_path):
    config = memory_config(**{"env.factory": "tests.policies.memory_envs:make_memory_env_continuous",
                              "runner.total_updates": 15, "runner.checkpoint_every": 15})
    runner = Runner(config, LocalBackend(config), tmp_path, progress=False)
    initial_log_std = runner.ppo.actor.head.log_std.detach().clone()
    runner.train()
    runner.backend.close()
    successes = [row["successes_mean"] for row in runner.metrics.rows]
    # the sign of a Gaussian sample names the cue: chance is 0.5 until the LSTM carries the cue to the query step
    assert successes[0] <= 0.7 and np.mean(successes[-3:]) >= 0.95, successes
    assert torch.all(runner.ppo.actor.head.log_std < initial_log_std)  # sure of its answer, it explores less
    assert runner.ppo.storage.actions.dtype == torch.float32


def test_dactyl_sizes_run_unchanged(tmp_path):
    config = memory_config(**{"model.dense_size": 1024, "model.lstm_size": 512, "ppo.gamma": 0.998,
                              "ppo.gae_lambda": 0.95, "ppo.clip": 0.2, "ppo.entropy_coef": 0.01,
                              "ppo.learning_rate": 3e-4, "ppo.chunk_len": 10, "env.num_envs": 4,
                              "runner.total_updates": 1})
    runner = Runner(config, LocalBackend(config), tmp_path, progress=False)
    runner.train()
    assert runner.ppo.actor.memory.cell.hidden_size == 512
    assert runner.ppo.actor.encoder[0].out_features == 1024
    assert runner.counters["env_steps"] == 4 * 20


def test_bf16_update_rounds_the_encoders_and_lstms_but_keeps_float32_heads():
    config = memory_config(**{"ppo.chunk_len": 4, "ppo.precision": "fp32"})
    ppo = rollout(config, MemoryVecEnv(4), num_steps=8)
    batch = ppo.storage.select(torch.arange(4))
    exact = ppo.evaluate(batch)
    ppo.config = dataclasses.replace(config.ppo, precision="bf16")
    rounded = ppo.evaluate(batch)
    for full, bf16 in zip(exact, rounded):
        assert bf16.dtype == torch.float32
        # bfloat16 keeps 8 significant bits: close to the float32 result, and not equal to it
        assert not torch.equal(full, bf16)
        torch.testing.assert_close(bf16, full, atol=0.05, rtol=0.05)
    before = [parameter.detach().clone() for parameter in ppo.parameters()]
    stats = ppo.update()
    assert all(np.isfinite(value) for value in stats.values() if value == value)
    assert all(parameter.dtype == torch.float32 for parameter in ppo.parameters())
    assert all(not torch.equal(old, new) for old, new in zip(before, ppo.parameters()) if new.requires_grad)
