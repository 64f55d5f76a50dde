"""GAE against hand-computed numbers; minibatches keep whole env sequences."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from policies.models import EnvSpec
from policies.storage import RolloutStorage, generalized_advantages


def test_gae_matches_hand_computed_numbers_for_running_terminal_and_timed_out_episodes():
    # envs: 0 runs through, 1 terminates at t=1, 2 times out at t=1 (final state worth 4), 3 does both at t=1
    rewards = torch.tensor([[1.0] * 4, [2.0] * 4, [3.0] * 4])
    values = torch.tensor([[0.5] * 4, [1.0] * 4, [1.5] * 4])
    last_values = torch.full((4,), 2.0)
    terminated = torch.zeros(3, 4, dtype=torch.bool)
    truncated = torch.zeros(3, 4, dtype=torch.bool)
    terminated[1, 1] = terminated[1, 3] = True
    truncated[1, 2] = truncated[1, 3] = True
    timeout_values = torch.zeros(3, 4)
    timeout_values[1, 2] = timeout_values[1, 3] = 4.0
    advantages, returns = generalized_advantages(rewards, values, last_values, terminated, truncated,
                                                 timeout_values, gamma=0.5, lam=0.5)
    # gamma * lam = 0.25; t=2 everywhere: 3 + 0.5 * 2 - 1.5 = 2.5
    # env 0: t=1: 2 + 0.5*1.5 - 1 + 0.25*2.5 = 2.375; t=0: 1 + 0.5*1 - 0.5 + 0.25*2.375 = 1.59375
    # env 1: t=1: 2 + 0 - 1 = 1 (nothing flows back from t=2); t=0: 1 + 0.25*1 = 1.25
    # env 2: t=1: 2 + 0.5*4 - 1 = 3; t=0: 1 + 0.25*3 = 1.75
    # env 3: terminal wins over time-out: as env 1
    expected = torch.tensor([[1.59375, 1.25, 1.75, 1.25], [2.375, 1.0, 3.0, 1.0], [2.5, 2.5, 2.5, 2.5]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values)


def test_gae_with_lambda_one_is_the_discounted_return_minus_value():
    rewards = torch.tensor([[1.0], [0.0], [2.0]])
    values = torch.tensor([[0.3], [0.2], [0.1]])
    zeros = torch.zeros(3, 1, dtype=torch.bool)
    advantages, returns = generalized_advantages(rewards, values, torch.tensor([10.0]), zeros, zeros,
                                                 torch.zeros(3, 1), gamma=0.9, lam=1.0)
    # return at t=0: 1 + 0.9*0 + 0.81*2 + 0.729*10 = 9.91
    torch.testing.assert_close(returns[:, 0], torch.tensor([9.91, 9.9, 11.0]))
    torch.testing.assert_close(advantages[:, 0], torch.tensor([9.61, 9.7, 10.9]))


def filled_storage(num_steps=6, num_envs=8, chunk_len=3):
    spec = EnvSpec(policy_size=2, critic_size=3, action_type="discrete", num_actions=1, num_bins=2)
    storage = RolloutStorage(num_steps, num_envs, spec, lstm_size=4, chunk_len=chunk_len)
    # every value encodes (step, env) so a minibatch shows where its rows came from
    code = torch.arange(num_steps).unsqueeze(1) * 100 + torch.arange(num_envs).unsqueeze(0)
    storage.values = code.float()
    storage.rewards = code.float()
    storage.actor_hidden = torch.arange(num_envs).float().expand(num_steps // chunk_len, num_envs).unsqueeze(-1) \
        .expand(-1, -1, 4).clone()
    storage.step = num_steps
    return storage, code


def test_minibatches_hold_whole_sequences_of_disjoint_envs():
    storage, code = filled_storage()
    seen = []
    for batch in storage.minibatches(4, np.random.default_rng(0)):
        assert batch.values.shape == (6, 2)
        envs = batch.values[0].long().tolist()
        # all steps of each env, in order
        torch.testing.assert_close(batch.values, code[:, envs].float())
        torch.testing.assert_close(batch.actor_states[0][0, :, 0], torch.tensor(envs).float())
        seen += envs
    assert sorted(seen) == list(range(8))


def test_minibatch_order_follows_the_rng_and_uneven_splits_are_refused():
    storage, _ = filled_storage()
    first = [b.values[0].tolist() for b in storage.minibatches(2, np.random.default_rng(1))]
    again = [b.values[0].tolist() for b in storage.minibatches(2, np.random.default_rng(1))]
    assert first == again
    with pytest.raises(ValueError, match="equal minibatches"):
        next(storage.minibatches(3, np.random.default_rng(0)))


def test_storage_refuses_rollouts_that_chunks_do_not_tile():
    spec = EnvSpec(2, 3, "discrete", 1, 2)
    with pytest.raises(ValueError, match="multiple of chunk_len"):
        RolloutStorage(7, 2, spec, lstm_size=4, chunk_len=3)
