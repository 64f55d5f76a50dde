"""A short training run on a fixed synthetic dataset lowers the loss; checkpoints resume the same run."""
from __future__ import annotations

import json
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from sim import checkpoint
from sim.errors import CheckpointError
from vision.config import AugmentationConfig, load_vision_config
from vision.preprocess import PIXEL_STD
from vision.train import augment, learning_rate, train

IMAGE_SIZE = 48  # the synthetic_dataset fixture's image size


def small_config(**overrides):
    settings = {
        "model.input_size": IMAGE_SIZE,
        "dataset.image_size": IMAGE_SIZE,
        "augmentation.enabled": False,
        "train.batch_size": 16,
        "train.learning_rate": 0.002,
        "train.lr_schedule": "constant",
        "train.log_every": 1,
        "train.validate_every": 1000,
        "train.checkpoint_every": 20,
        "train.validation_fraction": 0.1,
        **overrides,
    }
    return load_vision_config(overrides=settings)


def train_records(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    # rows restored from a checkpoint's table carry every key, null where the row had no value
    return [json.loads(line) for line in lines if json.loads(line).get("train/loss") is not None]


def saved_step(run_dir):
    return checkpoint.load(run_dir / "checkpoint.pt", ("pose_training",))["step"]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_short_training_lowers_the_loss_fourfold(synthetic_dataset, tmp_path, precision):
    # The untrained net predicts about the mean position: a position loss near 9 (3 axes x the variance of
    # U[-3 cm, 3 cm] in cm^2); 40 steps on 86 images learn where the cube is well enough to cut the total by 4,
    # also with the convolutions in bfloat16.
    config = small_config(**{"train.steps": 40, "train.precision": precision})
    summary = train(config, synthetic_dataset, tmp_path, progress=False)
    records = train_records(tmp_path)
    first, last = records[0]["train/loss"], np.mean([record["train/loss"] for record in records[-5:]])
    assert first > 5.0
    assert last < first / 4.0, (first, last)
    assert summary["step"] == 40 and not summary["stopped_early"]
    validation = summary["validation"]
    assert validation["count"] == 10 and validation["position_error_mm"]["mean"] > 0
    model = checkpoint.load(tmp_path / "model.pt", ("pose_inference",))
    assert (model["step"], model["validation"]) == (40, validation)
    for name in ("checkpoint.pt", "curves.png"):
        assert (tmp_path / name).is_file()
    assert list((tmp_path / "tensorboard").iterdir())


def test_resume_continues_the_same_run_and_existing_runs_are_not_overwritten(synthetic_dataset, tmp_path):
    train(small_config(**{"train.steps": 6}), synthetic_dataset, tmp_path, progress=False)
    assert saved_step(tmp_path) == 6
    with pytest.raises(CheckpointError, match="pass --resume"):
        train(small_config(**{"train.steps": 6}), synthetic_dataset, tmp_path, progress=False)
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(small_config(**{"train.steps": 6}), synthetic_dataset, tmp_path / "fresh", resume=True, progress=False)
    with open(tmp_path / "metrics.jsonl", "a") as stale:  # a line logged after the checkpoint, before a crash
        stale.write(json.dumps({"step": 7, "train/loss": 99.0}) + "\n")

    train(small_config(**{"train.steps": 10}), synthetic_dataset, tmp_path, resume=True, progress=False)
    assert saved_step(tmp_path) == 10
    assert [record["step"] for record in train_records(tmp_path)] == list(range(1, 11))
    assert all(record["train/loss"] != 99.0 for record in train_records(tmp_path))


def test_sigterm_stops_after_the_step_checkpoints_it_and_restores_the_handler(synthetic_dataset, tmp_path):
    metrics = tmp_path / "metrics.jsonl"

    def terminate_once_training_runs():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 2):
            time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)

    before = signal.getsignal(signal.SIGTERM)
    threading.Thread(target=terminate_once_training_runs, daemon=True).start()
    summary = train(small_config(**{"train.steps": 100_000}), synthetic_dataset, tmp_path, progress=False)
    assert signal.getsignal(signal.SIGTERM) is before
    step = saved_step(tmp_path)
    assert summary["stopped_early"] and summary["step"] == step and 2 <= step < 100_000
    # saved where it stopped, not at the last periodic save (every 20); every step logs (log_every 1)
    assert train_records(tmp_path)[-1]["step"] == step
    assert (tmp_path / "curves.png").is_file()


def test_augmentation_keeps_shape_and_stays_within_its_ranges():
    config = AugmentationConfig(enabled=True, brightness=0.1, contrast=(1.0, 1.0), noise_std=0.0)
    images = torch.zeros(4, 3, 8, 8, 3)
    shifted = augment(images, config, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape
    offsets = shifted[:, :, 0, 0, 0]
    assert bool(torch.all(offsets.abs() <= 0.1 / PIXEL_STD + 1e-6))
    assert bool(torch.all(shifted == offsets[:, :, None, None, None]))  # one offset per camera image
    assert augment(images, AugmentationConfig(enabled=False), torch.Generator()) is images


def test_cosine_schedule_hand_values():
    config = small_config(**{"train.lr_schedule": "cosine", "train.steps": 100, "train.learning_rate": 0.001})
    assert learning_rate(config, 0) == pytest.approx(0.001)
    assert learning_rate(config, 50) == pytest.approx(0.0005)
    assert learning_rate(config, 100) == pytest.approx(0.0, abs=1e-12)
