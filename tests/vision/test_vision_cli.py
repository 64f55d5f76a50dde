"""`inhand vision render/train/eval/export` end to end on the stand-in renderer, and `inhand bench vision`."""
from __future__ import annotations

import functools
import json
import pickle
import sys

import cv2
import numpy as np
import pytest
import torch

from policies.config import EnvSection, ModelConfig, TrainConfig
from policies.inference import InferencePolicy, export_inference
from policies.models import Actor, EnvSpec
from sim.batch import OBSERVATION_SIZES
from sim.render import render_pose_sample
from vision import bench, cli
from vision.dataset import load_shard

SMALL = ["--set", "dataset.image_size=48", "--set", "model.input_size=48", "--set", "dataset.shard_size=8"]


def test_render_train_eval_export(tmp_path, capsys):
    data, run, report = tmp_path / "data", tmp_path / "run", tmp_path / "eval"
    assert cli.main(["render", "--synthetic", "--out", str(data), "--count", "12", "--seed-start", "1000", *SMALL]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary == {"dataset": str(data), "count": 12, "shards": 2}

    train_settings = ["--set", "train.steps=3", "--set", "train.batch_size=4", "--set", "train.validation_fraction=0.2"]
    assert cli.main(["train", "--data", str(data), "--run-dir", str(run), *SMALL, *train_settings]) == 0
    assert (run / "checkpoint.pt").is_file()

    more, both = tmp_path / "more", tmp_path / "run-both"
    assert cli.main(["render", "--synthetic", "--out", str(more), "--n", "8", "--seed", "5000", *SMALL]) == 0
    assert cli.main(["train", "--data", str(data), str(more), "--run-dir", str(both), *SMALL, *train_settings]) == 0
    assert torch.load(both / "checkpoint.pt", weights_only=True)["dataset"] == [str(data), str(more)]

    assert cli.main(["eval", "--checkpoint", str(run / "checkpoint.pt"), "--data", str(data), "--out", str(report),
                     "--set", "evaluation.grid_samples=2", "--set", "evaluation.grid_cell_size=64"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["count"] == 12
    assert set(metrics["position_error_mm"]) == {"mean", "median", "p90", "max"}
    assert set(metrics["rotation_error_deg"]) == {"mean", "median", "p90", "max"}
    grid = cv2.imread(str(report / "samples.png"))
    assert grid.shape == (2 * (24 + 64), 3 * 64, 3)

    capsys.readouterr()
    assert cli.main(["eval", str(run / "checkpoint.pt"), "--data", str(data), "--max-samples", "4",
                     "--set", "evaluation.grid_samples=2", "--set", "evaluation.grid_cell_size=64"]) == 0
    assert json.loads((run / "checkpoint-eval-data" / "metrics.json").read_text())["count"] == 4
    assert json.loads(capsys.readouterr().out)["count"] == 4

    capsys.readouterr()
    assert cli.main(["export", "--checkpoint", str(run / "model.pt"), "--out", str(tmp_path / "pose.onnx")]) == 0
    assert json.loads(capsys.readouterr().out)["max_abs_difference_vs_torch"] < 1e-4


def test_errors_are_reported_not_raised(tmp_path, capsys, monkeypatch):
    assert cli.main(["train", "--data", str(tmp_path / "none"), "--run-dir", str(tmp_path / "run")]) == 2
    assert "no dataset manifest" in capsys.readouterr().err
    assert cli.main(["render", "--out", str(tmp_path), "--count", "1", "--set", "model.input_size=7"]) == 2
    assert "model.input_size" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sim.render", None)  # as on a checkout without the MuJoCo renderer
    assert cli.main(["render", "--out", str(tmp_path / "d"), "--count", "1"]) == 2
    assert "render_pose_sample is not available" in capsys.readouterr().err


def test_eval_takes_the_checkpoint_once(tmp_path, capsys):
    assert cli.main(["eval", "--data", str(tmp_path)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert cli.main(["eval", str(tmp_path / "a.pt"), "--checkpoint", str(tmp_path / "b.pt"), "--data", str(tmp_path)]) == 2
    assert "two checkpoints" in capsys.readouterr().err


def test_bench_prints_json_figures(capsys):
    assert bench.main(["--input-size", "48", "--repeats", "2", "--no-onnx", "--no-render", "--train-repeats", "1",
                       "--set", "train.batch_size=2"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["input_size"] == 48 and figures["batch"] == 1 and figures["threads"] == 2
    assert figures["torch_network_ms"] > 0 and figures["torch_end_to_end_ms"] > 0
    assert "render_ms_per_sample" not in figures
    assert figures["train_batch"] == 2 and figures["train_step_ms_fp32"] > 0 and figures["train_step_ms_bf16"] > 0
    assert figures["train_bf16_speedup"] == pytest.approx(figures["train_step_ms_fp32"] / figures["train_step_ms_bf16"])


def test_bench_times_the_mujoco_render(capsys):
    assert bench.main(["--input-size", "48", "--set", "dataset.image_size=48", "--repeats", "1", "--no-onnx",
                       "--render-samples", "3", "--train-repeats", "0"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["render_size"] == 48 and figures["cameras"] == 3
    assert figures["render_ms_per_sample"] > 0
    assert figures["render_ms_per_camera"] == pytest.approx(figures["render_ms_per_sample"] / 3)


def test_render_flag_aliases():
    parser = cli.build_parser()
    short = parser.parse_args(["render", "--out", "d", "--n", "5", "--seed", "7"])
    long = parser.parse_args(["render", "--out", "d", "--count", "5", "--seed-start", "7"])
    assert (short.count, short.seed_start, short.policy) == (long.count, long.seed_start, None) == (5, 7, None)


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory):
    """A freshly initialized small inhand policy (goal mode z), saved as an inference checkpoint."""
    torch.manual_seed(0)
    spec = EnvSpec(OBSERVATION_SIZES["policy"], OBSERVATION_SIZES["critic"], "discrete", 20, 11)
    config = TrainConfig(env=EnvSection(goal_mode="z"), model=ModelConfig(dense_size=32, lstm_size=16))
    actor = Actor(spec, config.model)
    with torch.no_grad():
        # larger final weights than the near-uniform initialization, so the most likely bins vary with the state
        actor.head.linear.weight.mul_(100.0)
    return export_inference(InferencePolicy(actor, config), tmp_path_factory.mktemp("policy") / "policy.pt")


def poses(folder):
    shard = load_shard(folder / "shard-00000.npz")
    return np.concatenate([shard["position"], shard["quaternion"]], axis=1), shard["images"]


def test_render_with_a_policy_rolls_it_out(tmp_path, policy_file):
    render = ["render", "--n", "4", "--seed", "20", *SMALL]
    assert cli.main([*render, "--out", str(tmp_path / "random")]) == 0
    assert cli.main([*render, "--out", str(tmp_path / "policy"), "--policy", str(policy_file)]) == 0
    assert cli.main([*render, "--out", str(tmp_path / "again"), "--policy", str(policy_file)]) == 0
    random_poses, _ = poses(tmp_path / "random")
    policy_poses, policy_images = poses(tmp_path / "policy")
    again_poses, again_images = poses(tmp_path / "again")
    np.testing.assert_array_equal(policy_poses, again_poses)
    np.testing.assert_array_equal(policy_images, again_images)
    moved = np.linalg.norm(policy_poses[:, :3] - random_poses[:, :3], axis=1)
    assert np.all(moved > 1e-3)

    # what a spawn render worker receives: the policy's path and a module-level loader, by pickle
    render_sample = pickle.loads(pickle.dumps(functools.partial(
        render_pose_sample, image_size=48, policy_path=str(policy_file), load_policy=cli.load_render_policy)))
    images, position, quaternion, _ = render_sample(21)
    np.testing.assert_array_equal(images, policy_images[1])
    np.testing.assert_array_equal(np.concatenate([position, quaternion]), policy_poses[1])
    # a dataset resumes only with the cube states it was started with
    assert cli.main([*render, "--out", str(tmp_path / "random")]) == 0
    assert cli.main([*render, "--out", str(tmp_path / "random"), "--policy", str(policy_file)]) == 2


def test_render_policy_env_options(policy_file):
    policy, options = cli.load_render_policy(str(policy_file))
    assert options == {"action_type": "discrete", "action_bins": 11, "goal_mode": "z"}
    assert policy.spec.policy_size == 22


def test_render_refuses_bad_policies(tmp_path, capsys, policy_file):
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    render = ["render", "--n", "1", "--out", str(tmp_path / "d"), *SMALL]
    assert cli.main([*render, "--policy", str(garbage)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("inhand vision render: ") and "garbage.pt" in error
    assert cli.main([*render, "--policy", str(tmp_path / "missing.pt")]) == 2
    assert "missing.pt: checkpoint file not found" in capsys.readouterr().err
    assert cli.main([*render, "--policy", str(policy_file), "--synthetic"]) == 2
    assert "--synthetic" in capsys.readouterr().err

    small = TrainConfig(model=ModelConfig(dense_size=4, lstm_size=4))
    memory = Actor(EnvSpec(2, 3, "discrete", 1, 2), small.model)
    other_env = export_inference(InferencePolicy(memory, small), tmp_path / "memory.pt")
    assert cli.main([*render, "--policy", str(other_env)]) == 2
    assert "reads 2 observation values but the inhand sim gives 22" in capsys.readouterr().err


def test_export_and_eval_never_write_over_their_inputs(tmp_path, capsys):
    from ros_nodes.bench_system import write_untrained_pose_checkpoint

    model = write_untrained_pose_checkpoint(tmp_path / "model.pt", input_size=48)
    before = model.read_bytes()
    assert cli.main(["export", "--checkpoint", str(model), "--out", str(model)]) == 2
    assert "inhand vision export: --out" in (error := capsys.readouterr().err) and ".onnx extension" in error
    linked = tmp_path / "model.onnx"  # the checkpoint behind an .onnx name: still the input
    linked.hardlink_to(model)
    assert cli.main(["export", "--checkpoint", str(model), "--out", str(linked), "--force"]) == 2
    assert "an input of this command" in capsys.readouterr().err
    data = tmp_path / "data"
    data.mkdir()
    assert cli.main(["eval", str(model), "--data", str(data), "--out", str(data)]) == 2
    assert f"{data}, an input of this command" in capsys.readouterr().err
    assert model.read_bytes() == before
