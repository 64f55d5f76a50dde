"""Normalizer statistics and clipping; the recurrent cell's reset zeroes only finished envs; action heads."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from policies.modules import CategoricalHead, GaussianHead, RecurrentCell, RunningNormalizer


def test_normalizer_matches_numpy_over_batches_and_clips_at_five():
    rng = np.random.default_rng(0)
    data = rng.normal([3.0, -2.0], [0.5, 4.0], size=(1000, 2))
    normalizer = RunningNormalizer(2, clip=5.0)
    for part in np.array_split(data, 7):
        normalizer.update(torch.as_tensor(part))
    np.testing.assert_allclose(normalizer.mean.numpy(), data.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(normalizer.var.numpy(), data.var(axis=0), rtol=1e-5)
    # mean + 100 std standardizes to 100, clipped to 5; the mean itself maps to 0
    far = torch.tensor(np.array([data.mean(axis=0) + 100 * data.std(axis=0), data.mean(axis=0)]), dtype=torch.float32)
    torch.testing.assert_close(normalizer(far), torch.tensor([[5.0, 5.0], [0.0, 0.0]]), atol=1e-4, rtol=0)
    assert {"mean", "var", "count"} <= set(normalizer.state_dict())


def test_normalizer_denormalize_inverts_without_clip():
    normalizer = RunningNormalizer(1, clip=None)
    normalizer.update(torch.tensor([[1.0], [3.0]]))  # mean 2, var 1
    torch.testing.assert_close(normalizer(torch.tensor([[10.0]])), torch.tensor([[8.0]]), atol=1e-3, rtol=0)
    torch.testing.assert_close(normalizer.denormalize(torch.tensor([[8.0]])), torch.tensor([[10.0]]),
                               atol=1e-3, rtol=0)


def test_reset_zeroes_only_the_finished_envs():
    torch.manual_seed(0)
    cell = RecurrentCell(3, 5)
    cell.start(4)
    cell.step(torch.randn(4, 3))
    hidden_before, cell_before = (tensor.clone() for tensor in cell.held_state())
    assert hidden_before.abs().min() > 0
    cell.reset(torch.tensor([False, True, False, True]))
    hidden, memory = cell.held_state()
    for env in (1, 3):
        assert torch.all(hidden[env] == 0) and torch.all(memory[env] == 0)
    for env in (0, 2):
        assert torch.equal(hidden[env], hidden_before[env]) and torch.equal(memory[env], cell_before[env])


def test_unroll_with_dones_equals_stepping_with_resets():
    torch.manual_seed(1)
    cell = RecurrentCell(3, 5)
    inputs = torch.randn(6, 2, 3)
    dones = torch.zeros(6, 2, dtype=torch.bool)
    dones[2, 0] = True
    cell.start(2)
    stepped = []
    for step in range(6):
        stepped.append(cell.step(inputs[step]))
        cell.reset(dones[step])
    unrolled = cell.unroll(inputs, cell.initial_state(2), dones)
    torch.testing.assert_close(unrolled, torch.stack(stepped))
    # after env 0's reset at step 2, its step 3 output equals a fresh start on input 3
    fresh, _ = cell(inputs[3, :1], cell.initial_state(1))
    torch.testing.assert_close(unrolled[3, :1], fresh)


def _reference_unroll(cell: RecurrentCell, x: torch.Tensor, state, dones: torch.Tensor) -> torch.Tensor:
    """Unroll through torch's own LSTMCell, step by step: what RecurrentCell.unroll writes out by hand."""
    outputs = []
    for step in range(x.shape[0]):
        if step > 0:
            keep = (~dones[step - 1]).unsqueeze(-1).float()
            state = (state[0] * keep, state[1] * keep)
        output, state = cell(x[step], state)
        outputs.append(output)
    return torch.stack(outputs)


@pytest.mark.parametrize("remember", [True, False])
def test_unroll_matches_torch_lstm_cell_in_outputs_and_gradients(remember):
    torch.manual_seed(3)
    cell = RecurrentCell(4, 6, remember=remember)
    x = torch.randn(7, 3, 4)
    state = (torch.randn(3, 6), torch.randn(3, 6))
    dones = torch.zeros(7, 3, dtype=torch.bool)
    dones[1, 2] = dones[4, 0] = True
    weights = torch.randn(7, 3, 6)  # a loss that weighs every output differently

    def outputs_and_gradients(unroll):
        cell.zero_grad()
        inputs = x.clone().requires_grad_()
        output = unroll(inputs)
        (output * weights).sum().backward()
        return [output, inputs.grad, *(parameter.grad for parameter in cell.parameters())]

    ours = outputs_and_gradients(lambda inputs: cell.unroll(inputs, state, dones))
    reference = outputs_and_gradients(lambda inputs: _reference_unroll(cell, inputs, state, dones))
    assert len(ours) == 6
    for a, b in zip(ours, reference):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    if not remember:
        # feed-forward: step 3 of env 1 depends on input 3 alone
        torch.testing.assert_close(ours[0][3, 1:2], cell(x[3, 1:2], cell.initial_state(1))[0])


def test_feed_forward_mode_ignores_the_state():
    torch.manual_seed(2)
    cell = RecurrentCell(3, 5, remember=False)
    x = torch.randn(2, 3)
    state = (torch.randn(2, 5), torch.randn(2, 5))
    torch.testing.assert_close(cell(x, state)[0], cell(x, cell.initial_state(2))[0])


def test_categorical_head_log_prob_and_entropy_by_hand():
    head = CategoricalHead(4, num_actions=2, num_bins=3)
    logits = torch.log(torch.tensor([[[0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3]]]))
    log_prob = head.log_prob(logits, torch.tensor([[2, 0]]))
    assert log_prob.item() == pytest.approx(math.log(0.5) + math.log(1 / 3), abs=1e-6)
    entropy = -(0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5)) + math.log(3)
    assert head.entropy(logits).item() == pytest.approx(entropy, abs=1e-6)
    joint_log_prob, joint_entropy = head.log_prob_and_entropy(logits, torch.tensor([[2, 0]]))
    assert (joint_log_prob.item(), joint_entropy.item()) == (log_prob.item(), head.entropy(logits).item())
    generator = torch.Generator().manual_seed(0)
    samples = torch.stack([head.sample(logits, generator) for _ in range(4000)])
    for actuator, probabilities in enumerate(([0.2, 0.3, 0.5], [1 / 3, 1 / 3, 1 / 3])):
        for bin_index, probability in enumerate(probabilities):
            frequency = (samples[..., actuator] == bin_index).float().mean().item()
            assert frequency == pytest.approx(probability, abs=0.03)


def test_categorical_head_samples_with_their_log_prob_and_never_a_zero_probability_bin():
    head = CategoricalHead(4, num_actions=3, num_bins=4)
    # bins of probability 0 at both ends and inside; one actuator certain
    probabilities = torch.tensor([[[0.0, 0.5, 0.0, 0.5], [0.0, 0.0, 0.0, 1.0], [1.0, 0.0, 0.0, 0.0]]])
    logits = torch.log(probabilities).clamp_min(-1e4).expand(500, -1, -1)
    actions, log_probs = head.sample_and_log_prob(logits, torch.Generator().manual_seed(1))
    assert set(actions[:, 0].tolist()) == {1, 3}
    assert actions[:, 1].eq(3).all() and actions[:, 2].eq(0).all()
    torch.testing.assert_close(log_probs, head.log_prob(logits, actions))
    torch.testing.assert_close(log_probs, torch.full((500,), math.log(0.5)))


def test_gaussian_head_log_prob_and_entropy_by_hand():
    head = GaussianHead(4, num_actions=2, initial_log_std=math.log(0.5))
    mean = torch.tensor([[0.0, 1.0]])
    # z = (0.5 / 0.5, 0 / 0.5) = (1, 0)
    expected = -0.5 * 1.0 - 2 * math.log(0.5) - math.log(2 * math.pi)
    assert head.log_prob(mean, torch.tensor([[0.5, 1.0]])).item() == pytest.approx(expected, abs=1e-6)
    assert head.entropy(mean).item() == pytest.approx(2 * (0.5 + 0.5 * math.log(2 * math.pi) + math.log(0.5)),
                                                      abs=1e-6)
