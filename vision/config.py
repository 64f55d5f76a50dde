"""Typed, frozen configuration of the pose estimator: model, dataset, training, augmentation, evaluation."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.config_loading import ConfigError, bound, choice, load_config
from sim.cores import DEVICES
from sim.paths import share_directory

DEFAULT_CONFIG_PATH = share_directory() / "config" / "vision.yaml"  # the installed one, whatever the current folder


@dataclass(frozen=True)
class ModelConfig:
    """Dactyl table 12: a shared convolutional tower per camera, spatial softmax, FC head."""

    input_size: int = field(default=96, metadata=bound(48, 512))
    crop: float = field(default=1.0, metadata=bound(0.2, 1.0))  # centred share of each camera image kept
    pooled_features: bool = False  # add each camera's mean last-layer features to its keypoints
    camera_count: int = field(default=3, metadata=bound(1, 8))
    stem_channels: tuple[int, int] = field(default=(32, 32), metadata=bound(1, 512))
    stage_blocks: tuple[int, ...] = field(default=(1, 2, 2, 2), metadata=bound(1, 8))
    stage_channels: tuple[int, ...] = field(default=(16, 32, 64, 64), metadata=bound(1, 512))
    stage_strides: tuple[int, ...] = field(default=(1, 2, 2, 2), metadata=bound(1, 2))
    hidden_size: int = field(default=128, metadata=bound(8, 4096))
    learn_temperature: bool = True
    initial_temperature: float = field(default=1.0, metadata=bound(1e-3, 1e3))


@dataclass(frozen=True)
class DatasetConfig:
    """How renders are stored: image size at render time, camera names, shard size, compression."""

    image_size: int = field(default=200, metadata=bound(16, 1024))
    camera_names: tuple[str, ...] = ("left", "front", "right")
    shard_size: int = field(default=256, metadata=bound(1, 100_000))
    compress: bool = True


@dataclass(frozen=True)
class AugmentationConfig:
    """On-the-fly photometric jitter on training batches, in units of [0, 1] pixel intensity."""

    enabled: bool = True
    brightness: float = field(default=0.05, metadata=bound(0.0, 0.5))
    contrast: tuple[float, float] = field(default=(0.9, 1.1), metadata=bound(0.1, 3.0))
    noise_std: float = field(default=0.02, metadata=bound(0.0, 0.5))


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, losses, held-out split and logging/checkpoint cadence."""

    steps: int = field(default=20_000, metadata=bound(1, 100_000_000))
    batch_size: int = field(default=32, metadata=bound(1, 4096))
    learning_rate: float = field(default=5e-4, metadata=bound(1e-7, 1.0))
    weight_decay: float = field(default=1e-4, metadata=bound(0.0, 1.0))
    lr_schedule: str = field(default="cosine", metadata=choice("cosine", "constant"))
    position_loss_unit_m: float = field(default=0.01, metadata=bound(1e-5, 10.0))
    orientation_loss_weight: float = field(default=1.0, metadata=bound(0.0, 1e3))
    validation_fraction: float = field(default=0.05, metadata=bound(0.0, 0.5))
    validation_max_samples: int = field(default=512, metadata=bound(1, 10_000_000))
    log_every: int = field(default=50, metadata=bound(1, 1_000_000))
    validate_every: int = field(default=1000, metadata=bound(1, 10_000_000))
    checkpoint_every: int = field(default=1000, metadata=bound(1, 10_000_000))
    device: str = field(default="auto", metadata=choice(*DEVICES))
    num_workers: int = field(default=0, metadata=bound(0, 64))
    threads: int = field(default=0, metadata=bound(0, 256))
    # bf16: the convolutions run under bfloat16 autocast (about 2x faster on CPUs with AVX512-BF16 or AMX, and on
    # GPUs); keypoints, heads, losses and the weights stay float32, and evaluation and inference are float32
    precision: str = field(default="fp32", metadata=choice("fp32", "bf16"))
    seed: int = field(default=0, metadata=bound(0, 2**31 - 1))


@dataclass(frozen=True)
class EvaluationConfig:
    """Held-out metrics and the PNG grid of samples with true and predicted cube axes."""

    batch_size: int = field(default=32, metadata=bound(1, 4096))
    grid_samples: int = field(default=6, metadata=bound(0, 64))
    axis_length_m: float = field(default=0.04, metadata=bound(1e-3, 1.0))
    grid_cell_size: int = field(default=200, metadata=bound(32, 1024))


@dataclass(frozen=True)
class PalmConfig:
    """The drop detector (vision.on_palm): a small CNN over the three whole camera images, is the cube on the palm."""

    input_size: int = field(default=48, metadata=bound(16, 256))  # whole images, no crop: the table shows too
    camera_count: int = field(default=3, metadata=bound(1, 8))
    channels: tuple[int, ...] = field(default=(16, 32, 32), metadata=bound(1, 256))  # 3x3 convs, stride 2 each
    hidden_size: int = field(default=32, metadata=bound(4, 1024))
    epochs: int = field(default=20, metadata=bound(1, 1000))
    batch_size: int = field(default=64, metadata=bound(1, 4096))
    learning_rate: float = field(default=1e-3, metadata=bound(1e-6, 1.0))
    weight_decay: float = field(default=1e-4, metadata=bound(0.0, 1.0))
    threads: int = field(default=1, metadata=bound(0, 256))  # torch threads; 0 keeps torch's default
    seed: int = field(default=0, metadata=bound(0, 2**31 - 1))


@dataclass(frozen=True)
class VisionConfig:
    """Everything config/vision.yaml holds."""

    model: ModelConfig = ModelConfig()
    dataset: DatasetConfig = DatasetConfig()
    augmentation: AugmentationConfig = AugmentationConfig()
    train: TrainConfig = TrainConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    palm: PalmConfig = PalmConfig()


def load_vision_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> VisionConfig:
    """Load config/vision.yaml (or `path`); `overrides` maps dotted keys (e.g. "train.steps") to values."""
    config = load_config(VisionConfig, DEFAULT_CONFIG_PATH if path is None else path, overrides)
    check_consistency(config, str(path or DEFAULT_CONFIG_PATH))
    return config


def check_consistency(config: VisionConfig, source: str = "<config>") -> None:
    """Raise ConfigError where fields that must agree with each other do not."""
    model = config.model
    lengths = {len(model.stage_blocks), len(model.stage_channels), len(model.stage_strides)}
    if len(lengths) != 1:
        raise ConfigError(
            f"{source}: keys 'model.stage_blocks', 'model.stage_channels', 'model.stage_strides' must have the "
            f"same length, got {list(model.stage_blocks)}, {list(model.stage_channels)}, {list(model.stage_strides)}"
        )
    if len(config.dataset.camera_names) != model.camera_count:
        raise ConfigError(
            f"{source}: key 'dataset.camera_names' lists {len(config.dataset.camera_names)} cameras but "
            f"'model.camera_count' is {model.camera_count}"
        )
