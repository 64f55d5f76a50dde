"""The pose network of Dactyl table 12: a camera tower shared by all cameras, spatial softmax, FC head."""
from __future__ import annotations

import contextlib
import math

import torch
from torch import nn

from vision.config import ModelConfig
from vision.geometry import matrix_from_6d, matrix_to_quaternion
from vision.preprocess import normalize_pixels


def full_precision(tensor: torch.Tensor) -> contextlib.AbstractContextManager[None]:
    """Turns autocast off for what follows the convolutions: training may run the towers in bfloat16
    (train.precision), but keypoints, the head and Gram-Schmidt need float32 to resolve a few degrees."""
    device_type = tensor.device.type
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


class SpatialSoftmax(nn.Module):
    """Feature maps (B, C, H, W) -> expected image coordinates (B, 2C) as [x0, y0, x1, y1, ...] in [-1, 1].

    Each channel becomes a distribution softmax(features / temperature) over its pixels; x runs from -1 at the
    left pixel centre to +1 at the right one, y from -1 at the top row to +1 at the bottom row.
    """

    def __init__(self, temperature: float = 1.0, learnable: bool = True) -> None:
        super().__init__()
        log_temperature = torch.tensor(math.log(temperature), dtype=torch.float32)
        if learnable:
            self.log_temperature = nn.Parameter(log_temperature)
        else:
            self.register_buffer("log_temperature", log_temperature)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = features.shape
        logits = features.reshape(batch, channels, height * width) * torch.exp(-self.log_temperature)
        weights = torch.softmax(logits, dim=-1).reshape(batch, channels, height, width)
        xs = _pixel_coordinates(width, features)
        ys = _pixel_coordinates(height, features)
        expected_x = (weights.sum(dim=2) * xs).sum(dim=-1)
        expected_y = (weights.sum(dim=3) * ys).sum(dim=-1)
        return torch.stack((expected_x, expected_y), dim=-1).reshape(batch, 2 * channels)


def _pixel_coordinates(count: int, like: torch.Tensor) -> torch.Tensor:
    """Pixel centre coordinates (count,) spread evenly over [-1, 1] (a single pixel sits at 0)."""
    if count == 1:
        return torch.zeros(1, dtype=like.dtype, device=like.device)
    return torch.arange(count, dtype=like.dtype, device=like.device) * (2.0 / (count - 1)) - 1.0


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 conv + batch norm, identity or 1x1 projection shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class CameraTower(nn.Module):
    """One camera image (B, 3, H, W) -> spatial-softmax keypoints (B, 2C) of the last stage's C channels, then,
    with config.pooled_features, each channel's mean activation (B, C)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        first, second = config.stem_channels
        layers: list[nn.Module] = [
            nn.Conv2d(3, first, 5),
            nn.ReLU(),
            nn.Conv2d(first, second, 3),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=3),
        ]
        channels = second
        for blocks, out_channels, stride in zip(config.stage_blocks, config.stage_channels, config.stage_strides):
            for index in range(blocks):
                layers.append(BasicBlock(channels, out_channels, stride if index == 0 else 1))
                channels = out_channels
        self.features = nn.Sequential(*layers)
        self.keypoints = SpatialSoftmax(config.initial_temperature, config.learn_temperature)
        self.pooled = config.pooled_features
        self.output_size = (3 if self.pooled else 2) * channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.features(images)
        with full_precision(features):
            features = features.float()
            keypoints = self.keypoints(features)
            if not self.pooled:
                return keypoints
            # keypoints say where each channel fires, not how strongly: the mean adds what is visible (which faces)
            return torch.cat((keypoints, features.mean(dim=(2, 3))), dim=-1)


class PoseNet(nn.Module):
    """Images (N, cameras, H, W, 3), uint8 or preprocessed float -> position (N, 3) m, quaternion (N, 4) w-x-y-z.

    Float input must come from vision.preprocess; uint8 input is normalized here the same way. Orientation comes
    out of the head as the continuous 6-D representation (two matrix columns) rather than table 12's quaternion,
    because regressing quaternions directly trained to a near-constant guess here (98 deg median error); the
    returned quaternion is converted from that matrix, unit length with w >= 0. Positions are predicted around
    `position_center` in units of `position_scale`, which training sets from the data so the head's outputs
    start near unit scale.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tower = CameraTower(config)
        self.head = nn.Sequential(
            nn.Linear(config.camera_count * self.tower.output_size, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, 3 + 6),
        )
        self.register_buffer("position_center", torch.zeros(3))
        self.register_buffer("position_scale", torch.ones(3))

    def set_position_normalization(self, center: torch.Tensor, scale: torch.Tensor) -> None:
        """Set the position offset (3,) and per-axis scale (3,) in metres that the head's outputs are relative to."""
        scale = torch.as_tensor(scale, dtype=torch.float32)
        if not bool(torch.all(scale > 0)):
            raise ValueError(f"position scale must be positive per axis, got {scale.tolist()}")
        self.position_center.copy_(torch.as_tensor(center, dtype=torch.float32))
        self.position_scale.copy_(scale)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        position, rotation = self.pose(images)
        return position, matrix_to_quaternion(rotation)

    def pose(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as in forward -> position (N, 3) m and rotation matrix (N, 3, 3), which the loss reads."""
        if images.dim() != 5 or images.shape[1] != self.config.camera_count or images.shape[-1] != 3:
            raise ValueError(
                f"expected images shaped (N, {self.config.camera_count}, H, W, 3), got {tuple(images.shape)}"
            )
        if images.dtype == torch.uint8:
            images = normalize_pixels(images)
        batch, cameras, height, width, _ = images.shape
        per_camera = images.reshape(batch * cameras, height, width, 3).permute(0, 3, 1, 2)
        keypoints = self.tower(per_camera).reshape(batch, cameras * self.tower.output_size)
        with full_precision(keypoints):
            output = self.head(keypoints)
            return self.position_center + self.position_scale * output[:, :3], matrix_from_6d(output[:, 3:])


def feature_map_size(config: ModelConfig) -> int:
    """Side length of the last feature map for square inputs of config.input_size."""
    size = (config.input_size - 4 - 2 - 3) // 3 + 1
    for stride in config.stage_strides:
        size = (size - 1) // stride + 1
    return size
