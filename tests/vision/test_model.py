"""Spatial softmax on hand-built feature maps; network shapes at two input sizes; preprocessing."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vision.config import ModelConfig
from vision.model import PoseNet, SpatialSoftmax, feature_map_size
from vision.preprocess import center_crop, preprocess, resize_images


def test_spatial_softmax_single_hot_pixel_gives_its_coordinates():
    features = torch.zeros(1, 2, 5, 7)
    features[0, 0, 2, 5] = 60.0  # row 2 of 5, column 5 of 7
    keypoints = SpatialSoftmax(temperature=1.0)(features)
    # x = -1 + 2 * 5 / 6, y = -1 + 2 * 2 / 4; an all-zero channel is uniform and averages to the centre.
    np.testing.assert_allclose(keypoints.detach().numpy(), [[2.0 / 3.0, 0.0, 0.0, 0.0]], atol=1e-6)


def test_spatial_softmax_two_equal_peaks_average_and_temperature_softens():
    features = torch.zeros(1, 1, 3, 3)
    features[0, 0, 0, 0] = features[0, 0, 2, 2] = 80.0
    np.testing.assert_allclose(SpatialSoftmax(1.0)(features).detach().numpy(), [[0.0, 0.0]], atol=1e-6)
    pair = torch.tensor([[[[1.0, 0.0]]]])  # 1 x 2 map: left pixel at x = -1 holds 1, right at x = +1 holds 0
    weight_left = math.e / (math.e + 1.0)
    expected_x = -weight_left + (1.0 - weight_left)
    assert float(SpatialSoftmax(1.0)(pair).detach()[0, 0]) == pytest.approx(expected_x, abs=1e-6)
    weight_left = math.exp(0.5) / (math.exp(0.5) + 1.0)
    assert float(SpatialSoftmax(2.0, learnable=False)(pair)[0, 0]) == pytest.approx(1.0 - 2.0 * weight_left, abs=1e-6)


@pytest.mark.parametrize("size", [64, 200])
def test_pose_net_shapes_and_unit_quaternions(size):
    torch.manual_seed(0)
    config = ModelConfig(input_size=size)
    model = PoseNet(config).eval()
    images = torch.randint(0, 256, (2, 3, size, size, 3), dtype=torch.uint8)
    with torch.no_grad():
        position, quaternion = model(images)
        features = model.tower.features(torch.zeros(1, 3, size, size))
    assert position.shape == (2, 3) and quaternion.shape == (2, 4)
    np.testing.assert_allclose(torch.linalg.vector_norm(quaternion, dim=-1).numpy(), [1.0, 1.0], atol=1e-6)
    assert bool(torch.all(quaternion[:, 0] >= 0))
    assert features.shape == (1, 64, feature_map_size(config), feature_map_size(config))
    assert feature_map_size(ModelConfig(input_size=200)) == 8  # 200 -> 196 -> 194 -> 64 -> 64, 32, 16, 8


def test_uint8_input_equals_preprocessed_input_and_position_normalization_applies():
    torch.manual_seed(0)
    model = PoseNet(ModelConfig(input_size=48)).eval()
    images = np.random.default_rng(0).integers(0, 256, (1, 3, 48, 48, 3), dtype=np.uint8)
    with torch.no_grad():
        from_uint8 = model(torch.from_numpy(images))
        from_float = model(preprocess(images, 48))
        model.set_position_normalization(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([2.0, 2.0, 2.0]))
        shifted = model(preprocess(images, 48))
    np.testing.assert_allclose(from_uint8[0].numpy(), from_float[0].numpy(), atol=1e-6)
    np.testing.assert_allclose(shifted[0].numpy(), [[1.0, 2.0, 3.0]] + 2.0 * from_float[0].numpy(), atol=1e-5)
    with pytest.raises(ValueError, match="expected images shaped"):
        model(torch.zeros(1, 2, 48, 48, 3))


def test_preprocess_normalizes_and_resizes():
    images = np.zeros((3, 10, 10, 3), np.uint8)
    images[0] = 255
    tensor = preprocess(images, 5)
    assert tensor.shape == (1, 3, 5, 5, 3) and tensor.dtype == torch.float32
    assert float(tensor[0, 0].min()) == pytest.approx(2.0) and float(tensor[0, 1].max()) == pytest.approx(-2.0)
    assert resize_images(np.full((2, 8, 8, 3), 7, np.uint8), 4).shape == (2, 4, 4, 3)
    with pytest.raises(ValueError, match="uint8 RGB"):
        resize_images(np.zeros((8, 8, 3), np.float32), 4)
    with pytest.raises(ValueError, match=r"\(3, H, W, 3\)"):
        preprocess(np.zeros((2, 8, 8, 3), np.uint8), 4)


def test_preprocess_crop_keeps_the_centred_square():
    images = np.zeros((3, 10, 10, 3), np.uint8)
    images[:, 3:7, 3:7] = 255  # the centred 4 x 4 of each 10 x 10 image is white, the rest black
    cropped = preprocess(images, 4, crop=0.4)
    np.testing.assert_allclose(cropped.numpy(), 2.0)
    np.testing.assert_array_equal(center_crop(np.arange(5 * 4 * 3, dtype=np.uint8).reshape(5, 4, 3), 0.5)[..., 0],
                                  [[15, 18], [27, 30]])  # side round(0.5 * 4) = 2, top (5 - 2) // 2 = 1, left 1
    with pytest.raises(ValueError, match="crop fraction"):
        preprocess(images, 4, crop=0.0)


def test_pooled_features_add_each_channels_mean_to_the_keypoints():
    torch.manual_seed(0)
    tower = PoseNet(ModelConfig(input_size=48, pooled_features=True)).tower.eval()
    images = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        out, features = tower(images), tower.features(images)
        keypoints = tower.keypoints(features)
    assert tower.output_size == 3 * 64 and out.shape == (2, 192)
    np.testing.assert_allclose(out[:, :128].numpy(), keypoints.numpy(), atol=1e-6)
    np.testing.assert_allclose(out[:, 128:].numpy(), features.mean(dim=(2, 3)).numpy(), atol=1e-6)
    assert PoseNet(ModelConfig(input_size=48)).tower.output_size == 2 * 64


def test_under_bf16_autocast_only_the_convolutions_lose_precision():
    torch.manual_seed(0)
    model = PoseNet(ModelConfig(input_size=48)).eval()
    images = preprocess(np.random.default_rng(1).integers(0, 256, (4, 3, 48, 48, 3), dtype=np.uint8), 48)
    with torch.no_grad():
        exact_position, exact_rotation = model.pose(images)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            features = model.tower.features(images[:, 0].permute(0, 3, 1, 2))
            keypoints = model.tower(images[:, 0].permute(0, 3, 1, 2))
            position, rotation = model.pose(images)
    assert features.dtype == torch.bfloat16  # the towers do run in bfloat16
    assert keypoints.dtype == position.dtype == rotation.dtype == torch.float32
    # Gram-Schmidt in float32 keeps the rotation proper to float32 precision whatever the inputs' rounding
    identity = torch.eye(3).expand(4, 3, 3)
    np.testing.assert_allclose((rotation @ rotation.transpose(1, 2)).numpy(), identity.numpy(), atol=1e-5)
    # bfloat16 keeps 8 significant bits: outputs move by a few parts in a thousand of their scale, not more
    assert float((position - exact_position).abs().max()) < 0.02 * float(exact_position.abs().max()) + 1e-4
    assert float((rotation - exact_rotation).abs().max()) < 0.05
