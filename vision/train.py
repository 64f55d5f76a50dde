"""Training loop of the pose estimator: held-out split by seed, augmentation, metrics, atomic resumable checkpoints.

A run folder holds checkpoint.pt (everything needed to resume, the metrics history included), model.pt
(inference-only weights + config of the best validation result so far) and what sim.metrics_log writes:
metrics.jsonl, TensorBoard scalars under tensorboard/ and curves.png.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sim import checkpoint
from sim.config_loading import flatten_mapping, to_mapping
from sim.cores import resolve_device
from sim.errors import CheckpointError
from sim.metrics_log import MetricsLayout, MetricsLog, Panel, history_rows, pack_rows
from sim.stop_signal import StopSignal
from vision.config import AugmentationConfig, VisionConfig
from vision.dataset import PoseDataset, shard_grouped_batches, validation_mask
from vision.evaluate import error_metrics, predict_dataset
from vision.geometry import orientation_loss, position_loss
from vision.inference import config_from_checkpoint, save_pose_estimator
from vision.model import PoseNet
from vision.preprocess import PIXEL_STD

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
MIN_POSITION_SCALE_M = 1e-3
# a row holds one split's values under "<split>/<name>" (nested metrics flattened with "/"), at its step
POSE_METRICS = MetricsLayout(
    step_key="step",
    integer_keys=("step", "validation/count"),
    panels=(
        Panel("training loss", ("train/loss", "train/position_loss", "train/orientation_loss"), x="step",
              x_label="step", log_y=True),
        Panel("held-out mean error", ("validation/position_error_mm/mean", "validation/rotation_error_deg/mean"),
              x="step", x_label="step"),
    ),
)


def augment(images: torch.Tensor, config: AugmentationConfig, generator: torch.Generator) -> torch.Tensor:
    """Photometric jitter of preprocessed images (N, cameras, H, W, 3), independently per camera image."""
    if not config.enabled:
        return images
    shape, device = images.shape[:2] + (1, 1, 1), images.device
    low, high = config.contrast
    contrast = low + (high - low) * torch.rand(shape, generator=generator, device=device)
    brightness = config.brightness * (2.0 * torch.rand(shape, generator=generator, device=device) - 1.0) / PIXEL_STD
    mean = images.mean(dim=(2, 3, 4), keepdim=True)
    noise = torch.randn(images.shape, generator=generator, device=device) * (config.noise_std / PIXEL_STD)
    return mean + contrast * (images - mean) + brightness + noise


def learning_rate(config: VisionConfig, step: int) -> float:
    """Learning rate at `step`: constant, or cosine decay to zero over config.train.steps."""
    base = config.train.learning_rate
    if config.train.lr_schedule == "constant":
        return base
    return 0.5 * base * (1.0 + math.cos(math.pi * min(step, config.train.steps) / config.train.steps))


def loss_terms(
    model: PoseNet, batch: dict[str, torch.Tensor], config: VisionConfig
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss and its named parts for one batch of preprocessed (possibly augmented) images."""
    position, rotation = model.pose(batch["images"])
    position_term = position_loss(position, batch["position"], config.train.position_loss_unit_m)
    orientation_term = orientation_loss(rotation, batch["quaternion"])
    total = position_term + config.train.orientation_loss_weight * orientation_term
    parts = {"loss": total, "position_loss": position_term, "orientation_loss": orientation_term}
    return total, {name: float(value.detach()) for name, value in parts.items()}


def optimization_step(
    model: PoseNet, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor], config: VisionConfig
) -> dict[str, float]:
    """One gradient step on a preprocessed batch, the convolutions in bfloat16 when train.precision says so."""
    device_type = batch["images"].device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=config.train.precision == "bf16"):
        loss, parts = loss_terms(model, batch, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return parts


def metrics_row(split: str, step: int, values: dict[str, Any]) -> dict[str, Any]:
    """One metrics row: `values` (nested dicts flattened with "/") under the split's name, at `step`."""
    return {"step": step, **{f"{split}/{name}": value for name, value in flatten_mapping(values, separator="/").items()}}


def train(
    config: VisionConfig, data_dir: str | Path | Sequence[str | Path], run_dir: str | Path, resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on one dataset folder or several read as one until config.train.steps or a stop signal; returns the
    step reached, whether a signal stopped it, and the last validation metrics (empty without a held-out set)."""
    settings = config.train
    run_dir = Path(run_dir)
    checkpoint_path = run_dir / CHECKPOINT_NAME
    if checkpoint_path.exists() and not resume:
        raise CheckpointError(f"{checkpoint_path}: a run already exists here; pass --resume or use another folder")
    if resume and not checkpoint_path.exists():
        raise CheckpointError(f"{checkpoint_path}: nothing to resume")
    run_dir.mkdir(parents=True, exist_ok=True)
    if settings.threads:
        torch.set_num_threads(settings.threads)

    dataset = PoseDataset(data_dir, config.model.input_size, config.model.camera_count, crop=config.model.crop)
    held_out = validation_mask(dataset.seeds, settings.validation_fraction)
    train_indices = np.flatnonzero(~held_out)
    validation_indices = np.flatnonzero(held_out)[: settings.validation_max_samples]
    if len(train_indices) == 0:
        raise ValueError(
            f"{', '.join(map(str, dataset.roots))}: no training samples left after holding out "
            f"{settings.validation_fraction:.0%}"
        )

    torch.manual_seed(settings.seed)
    device = resolve_device(settings.device, "train.device")
    model = PoseNet(config.model).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay)
    step, best_score, history = 0, math.inf, []
    if resume:
        content = checkpoint.load(checkpoint_path, ("pose_training",))
        stored = config_from_checkpoint(content, str(checkpoint_path))
        if stored.model != config.model:
            raise CheckpointError(f"{checkpoint_path}: model config differs from the one given; resume with the same")
        model.load_state_dict(content["model"])
        optimizer.load_state_dict(content["optimizer"])
        torch.set_rng_state(content["torch_rng"])
        step, best_score = int(content["step"]), float(content["best_score"])
        history = history_rows(content, POSE_METRICS)
    else:
        positions = dataset.positions[train_indices]
        scale = np.maximum(positions.std(axis=0), MIN_POSITION_SCALE_M)
        model.set_position_normalization(torch.as_tensor(positions.mean(axis=0)), torch.as_tensor(scale))

    log = MetricsLog(run_dir, POSE_METRICS, history)

    def save_checkpoint() -> None:
        checkpoint.save(checkpoint_path, "pose_training", {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "config": to_mapping(config),
            "step": step,
            "best_score": best_score,
            "torch_rng": torch.get_rng_state(),
            "dataset": [str(root) for root in dataset.roots],
            "metrics": pack_rows(log.rows),
        })

    def save_model(metrics: dict[str, Any]) -> None:
        save_pose_estimator(run_dir / MODEL_NAME, model, config, step, metrics)

    generator = torch.Generator(device=device)
    validation: dict[str, Any] = {}
    steps_per_epoch = math.ceil(len(train_indices) / settings.batch_size)
    window_start, window_samples = time.perf_counter(), 0
    bar = tqdm(total=settings.steps, initial=step, desc="train", unit="step", disable=not progress)
    stop = StopSignal()
    try:
        with stop:
            while step < settings.steps and not stop.requested:
                epoch, offset = divmod(step, steps_per_epoch)
                epoch_rng = np.random.default_rng([settings.seed, epoch])
                batches = shard_grouped_batches(train_indices, dataset.shard_of_index, settings.batch_size, epoch_rng)
                batches = batches[offset:]
                loader = torch.utils.data.DataLoader(
                    dataset, batch_sampler=batches, num_workers=settings.num_workers, pin_memory=device.type == "cuda"
                )
                for batch in loader:
                    if step >= settings.steps or stop.requested:
                        break
                    batch = {name: value.to(device, non_blocking=True) for name, value in batch.items()}
                    model.train()
                    for group in optimizer.param_groups:
                        group["lr"] = learning_rate(config, step)
                    generator.manual_seed(settings.seed * 1_000_003 + step)
                    batch["images"] = augment(batch["images"], config.augmentation, generator)
                    parts = optimization_step(model, optimizer, batch, config)
                    step += 1
                    window_samples += len(batch["index"])
                    bar.update(1)
                    if step % settings.log_every == 0 or step == settings.steps:
                        elapsed = time.perf_counter() - window_start
                        parts.update(lr=optimizer.param_groups[0]["lr"],
                                     samples_per_s=window_samples / max(elapsed, 1e-9))
                        log.write(metrics_row("train", step, parts))
                        bar.set_postfix(loss=f"{parts['loss']:.4f}")
                        window_samples = 0
                    if len(validation_indices) and (step % settings.validate_every == 0 or step == settings.steps):
                        validation = error_metrics(
                            predict_dataset(model, dataset, validation_indices, settings.batch_size))
                        log.write(metrics_row("validation", step, validation))
                        score = validation["position_error_mm"]["mean"] + validation["rotation_error_deg"]["mean"]
                        if score < best_score:
                            best_score = score
                            save_model(validation)
                    if step % settings.checkpoint_every == 0 or step == settings.steps:
                        if not len(validation_indices):
                            save_model({})
                        save_checkpoint()
                    if step % settings.log_every == 0:
                        # the next throughput window starts after validation and checkpointing
                        window_start = time.perf_counter()
            if stop.requested:  # saved where the signal found it, not at the last periodic save
                save_checkpoint()
        log.plot()
    finally:
        bar.close()
        log.close()
    return {"step": step, "stopped_early": step < settings.steps, "validation": validation}
