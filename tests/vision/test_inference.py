"""Pose-estimator checkpoints, the run-time estimator, and ONNX export matching torch within 1e-4."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from sim import checkpoint
from sim.config_loading import to_mapping
from vision.config import ModelConfig, VisionConfig
from vision.inference import (
    CheckpointError,
    OnnxPoseEstimator,
    PoseEstimator,
    export_onnx,
    model_from_checkpoint,
    onnx_max_difference,
    save_pose_estimator,
)
from vision.model import PoseNet

SIZE = 48


def trained_looking_model(**options) -> PoseNet:
    """A network whose batch-norm statistics and position normalization are not at their defaults."""
    torch.manual_seed(0)
    model = PoseNet(ModelConfig(input_size=SIZE, **options))
    model.set_position_normalization(torch.tensor([0.01, -0.02, 0.05]), torch.tensor([0.02, 0.02, 0.03]))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randint(0, 256, (4, 3, SIZE, SIZE, 3), dtype=torch.uint8))
    return model.eval()


def images(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 3, SIZE, SIZE, 3), dtype=np.uint8)


def test_onnx_matches_torch_within_1e_4_at_several_batch_sizes(tmp_path):
    model = trained_looking_model()
    path = export_onnx(model, tmp_path / "pose.onnx")
    assert onnx_max_difference(model, path, images(1)) < 1e-4
    assert onnx_max_difference(model, path, images(5, seed=1)) < 1e-4
    position, quaternion = OnnxPoseEstimator(path).predict(images(1)[0])
    assert position.shape == (3,) and np.linalg.norm(quaternion) == pytest.approx(1.0, abs=1e-5)


def test_onnx_carries_the_crop_and_matches_torch_on_full_size_camera_images(tmp_path):
    model = trained_looking_model(crop=0.5, pooled_features=True)
    path = export_onnx(model, tmp_path / "pose.onnx")
    estimator = OnnxPoseEstimator(path)
    assert estimator.crop == 0.5
    camera_images = np.random.default_rng(2).integers(0, 256, (2, 3, 96, 96, 3), dtype=np.uint8)
    assert onnx_max_difference(model, path, camera_images) < 1e-4
    # only the centred 48 x 48 of each 96 x 96 image is seen: changing the border changes nothing
    bordered = camera_images.copy()
    bordered[:, :, :24] = 0
    np.testing.assert_allclose(estimator.predict_batch(bordered)[0], estimator.predict_batch(camera_images)[0])
    import onnx

    stripped = onnx.load(str(path))
    del stripped.metadata_props[:]
    onnx.save(stripped, str(tmp_path / "stripped.onnx"))
    with pytest.raises(CheckpointError, match="stripped.onnx: ONNX file lacks the 'inhand_crop' metadata"):
        OnnxPoseEstimator(tmp_path / "stripped.onnx")


def test_estimator_from_checkpoint_reproduces_the_model(tmp_path):
    model = trained_looking_model()
    config = VisionConfig(model=model.config)
    save_pose_estimator(tmp_path / "model.pt", model, config, step=7, validation={"count": 3})
    content = checkpoint.load(tmp_path / "model.pt", ("pose_inference",))
    assert (content["step"], content["validation"]) == (7, {"count": 3})
    estimator = PoseEstimator(model_from_checkpoint(tmp_path / "model.pt")[0])
    sample = images(1)[0]
    position, quaternion = estimator.predict(sample)
    with torch.no_grad():
        expected_position, expected_quaternion = model(torch.from_numpy(sample[None]))
    np.testing.assert_allclose(position, expected_position[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(quaternion, expected_quaternion[0].numpy(), atol=1e-6)
    larger = np.repeat(np.repeat(sample, 2, axis=1), 2, axis=2)  # 96 px images are resized to 48 first
    assert estimator.predict(larger)[0].shape == (3,)


def test_bad_checkpoints_are_refused_naming_the_file_and_what_is_wrong(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint file not found"):
        model_from_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage.pt: not a readable checkpoint"):
        model_from_checkpoint(tmp_path / "garbage.pt")
    torch.save({"weights": 1}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt: not an inhand-policy checkpoint"):
        model_from_checkpoint(tmp_path / "other.pt")
    model = trained_looking_model()
    right = to_mapping(VisionConfig(model=model.config))
    torch.save({"kind": "inference", "model": model.state_dict(), "config": right}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="old.pt: a pose-estimator file from before the inhand-policy checkpoint "
                                              "format; convert it once with `inhand vision convert"):
        model_from_checkpoint(tmp_path / "old.pt")
    checkpoint.save(tmp_path / "policy.pt", "inference", {"actor": {}})
    with pytest.raises(CheckpointError, match="policy.pt: holds a policy \\('inference'\\); this needs a pose-estimator "
                                              "training state \\('pose_training'\\) or a pose estimator"):
        model_from_checkpoint(tmp_path / "policy.pt")
    wrong = VisionConfig(model=ModelConfig(input_size=SIZE, hidden_size=64))
    save_pose_estimator(tmp_path / "mismatch.pt", model, wrong, step=0, validation={})
    with pytest.raises(CheckpointError, match="mismatch.pt: weights do not fit"):
        model_from_checkpoint(tmp_path / "mismatch.pt")
