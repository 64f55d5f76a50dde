"""Policy checkpoints: round trip, refusal of incompatible configs and envs, exports, ONNX parity (the format
itself: tests/sim/test_checkpoint.py)."""
from __future__ import annotations

import numpy as np
import onnxruntime
import pytest
import torch

from policies.inference import InferencePolicy, export_inference, export_onnx
from policies.models import EnvSpec
from policies.runner import LocalBackend, Runner, latest_checkpoint, resume_config
from sim import checkpoint
from sim.errors import CheckpointError
from tests.policies.memory_envs import REPO_ROOT, memory_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder after 2 updates, and its checkpoint."""
    run_dir = tmp_path_factory.mktemp("run")
    config = memory_config(**{"runner.total_updates": 2, "runner.checkpoint_every": 2})
    runner = Runner(config, LocalBackend(config), run_dir, progress=False)
    runner.train()
    runner.backend.close()
    return run_dir, latest_checkpoint(run_dir)


def test_training_checkpoint_round_trip(trained):
    run_dir, path = trained
    assert path.name == "update_00000002.pt"
    content = checkpoint.load(path, kinds=("training",))
    assert content["counters"] == {"update": 2, "env_steps": 2 * 20 * 32, "episodes": 2 * 4 * 32}
    assert content["spec"] == {"policy_size": 2, "critic_size": 3, "action_type": "discrete", "num_actions": 1,
                               "num_bins": 2}
    assert content["actor"]["normalizer.count"].item() == pytest.approx(2 * 20 * 32 + 1e-4)
    assert set(content["rng"]) == {"torch", "minibatch", "env_seeds"}
    assert content["optimizer"]["state"]


def test_incompatible_config_or_env_is_refused(trained):
    content = checkpoint.load(trained[1], checkpoint.POLICY_KINDS)
    wider = memory_config(**{"model.lstm_size": 64})
    with pytest.raises(CheckpointError, match="model.lstm_size: 32 -> 64"):
        resume_config(content["config"], wider, {}, "ckpt")
    with pytest.raises(CheckpointError, match="ppo.clip"):
        resume_config(content["config"], None, {"ppo.clip": 0.5}, "ckpt")
    longer = resume_config(content["config"], None, {"runner.total_updates": 9}, "ckpt")
    assert longer.runner.total_updates == 9

    class OtherEnv(LocalBackend):
        def __init__(self, config):
            super().__init__(config)
            self.spec = EnvSpec(5, 3, "discrete", 1, 2)

    config = memory_config()
    with pytest.raises(CheckpointError, match="trained on env"):
        Runner(config, OtherEnv(config), trained[0] / "other", resume_from=content, progress=False)


def test_inference_export_is_small_and_acts_like_the_training_checkpoint(trained, tmp_path):
    policy = InferencePolicy.load(trained[1])
    exported = export_inference(policy, tmp_path / "policy.pt")
    assert exported.stat().st_size < trained[1].stat().st_size / 2
    content = checkpoint.load(exported, kinds=("inference",))
    assert set(content) == {"format", "version", "kind", "config", "spec", "actor"}
    again = InferencePolicy.load(exported)
    observations = np.random.default_rng(0).normal(size=(6, 4, 2)).astype(np.float32)
    policy.reset(4)
    again.reset(4)
    for step in range(6):
        np.testing.assert_array_equal(policy.act(observations[step]), again.act(observations[step]))


def test_onnx_export_matches_torch_over_several_stateful_steps(trained, tmp_path):
    policy = InferencePolicy.load(trained[1])
    with torch.no_grad():
        policy.actor.head.linear.weight.normal_(0.0, 1.0)
    path = export_onnx(policy, tmp_path / "policy.onnx")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [node.name for node in session.get_inputs()] == ["obs", "h", "c"]
    assert [node.name for node in session.get_outputs()] == ["logits", "h_out", "c_out"]
    observations = np.random.default_rng(1).normal(size=(5, 3, 2)).astype(np.float32) * 3
    hidden = np.zeros((3, 32), np.float32)
    cell = np.zeros((3, 32), np.float32)
    state = policy.actor.memory.initial_state(3)
    for step in range(5):
        logits, hidden, cell = session.run(None, {"obs": observations[step], "h": hidden, "c": cell})
        with torch.no_grad():
            expected, state = policy.actor(torch.from_numpy(observations[step]), state)
        assert logits.shape == (3, 1, 2)
        np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(hidden, state[0].numpy(), atol=1e-4, rtol=0)
    assert np.abs(hidden).max() > 0


@pytest.mark.parametrize("name, goal_mode", [("z", "z"), ("xyz", "xyz")])
def test_the_shipped_policy_and_the_campaigns_training_files_load(name, goal_mode):
    policy = InferencePolicy.load(REPO_ROOT / "assets/checkpoints/policy_z.pt")
    campaign = checkpoint.load(REPO_ROOT / f"assets/training/{name}.train.pt", ("training",))
    assert EnvSpec(**campaign["spec"]) == policy.spec == EnvSpec(22, 84, "discrete", 20, 11)
    assert campaign["counters"]["env_steps"] == campaign["counters"]["update"] * 80 * 64
    assert campaign["config"]["env"]["goal_mode"] == goal_mode
