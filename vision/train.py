"""Training loop of the pose estimator: held-out split by seed, augmentation, metrics, atomic resumable checkpoints.

A run folder holds checkpoint.pt (everything needed to resume), model.pt (inference-only weights + config of the
best validation result so far), metrics.jsonl, TensorBoard events under tb/ and training_curves.png.
"""
from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sim.atomic import atomic_write
from sim.config_loading import flatten_mapping, to_mapping
from vision.config import AugmentationConfig, VisionConfig
from vision.dataset import PoseDataset, shard_grouped_batches, validation_mask
from vision.evaluate import error_metrics, predict_dataset
from vision.geometry import orientation_loss, position_loss
from sim.cores import resolve_device
from vision.inference import CheckpointError, config_from_checkpoint, load_checkpoint
from vision.model import PoseNet
from vision.preprocess import PIXEL_STD

CHECKPOINT_NAME = "checkpoint.pt"
MODEL_NAME = "model.pt"
METRICS_NAME = "metrics.jsonl"
MIN_POSITION_SCALE_M = 1e-3


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


def atomic_torch_save(data: dict[str, Any], path: Path) -> None:
    """torch.save through a temporary file and a rename."""
    atomic_write(path, lambda temporary: torch.save(data, temporary))


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop metric lines logged after `step`, so a resumed run continues one curve."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    atomic_write(path, lambda temporary: temporary.write_text("".join(line + "\n" for line in kept)))


class _MetricsLog:
    """Appends metric records to metrics.jsonl and TensorBoard scalars under tb/."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.path = run_dir / METRICS_NAME
        _truncate_metrics(self.path, start_step)
        self.file = open(self.path, "a")
        self.board = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1 if start_step else None)

    def write(self, split: str, step: int, values: dict[str, Any]) -> None:
        self.file.write(json.dumps({"split": split, "step": step, **values}) + "\n")
        self.file.flush()
        for name, value in flatten_mapping(values, separator="/").items():
            if isinstance(value, (int, float)):
                self.board.add_scalar(f"{split}/{name}", float(value), step)

    def close(self) -> None:
        self.file.close()
        self.board.close()




def _sigterm_as_interrupt() -> Any:
    """Make SIGTERM (kill, a job scheduler) stop training the way Ctrl-C does: checkpoint, then exit.

    Background jobs started from a script ignore SIGINT, so SIGTERM is the signal that reaches them.
    Returns the function that restores the previous handler.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def train(
    config: VisionConfig, data_dir: str | Path | Sequence[str | Path], run_dir: str | Path, resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Train on one dataset folder or several read as one until config.train.steps; returns the last validation
    metrics (empty without a held-out set)."""
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
    step, best_score = 0, math.inf
    if resume:
        checkpoint = load_checkpoint(checkpoint_path)
        stored = config_from_checkpoint(checkpoint, str(checkpoint_path))
        if stored.model != config.model:
            raise CheckpointError(f"{checkpoint_path}: model config differs from the one given; resume with the same")
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        torch.set_rng_state(checkpoint["torch_rng"])
        step, best_score = int(checkpoint["step"]), float(checkpoint["best_score"])
    else:
        positions = dataset.positions[train_indices]
        scale = np.maximum(positions.std(axis=0), MIN_POSITION_SCALE_M)
        model.set_position_normalization(torch.as_tensor(positions.mean(axis=0)), torch.as_tensor(scale))

    def save_checkpoint() -> None:
        atomic_torch_save(
            {
                "kind": "training",
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "config": to_mapping(config),
                "step": step,
                "best_score": best_score,
                "torch_rng": torch.get_rng_state(),
                "dataset": [str(root) for root in dataset.roots],
            },
            checkpoint_path,
        )

    def save_model(metrics: dict[str, Any]) -> None:
        inference = {"kind": "inference", "model": model.state_dict(), "config": to_mapping(config), "step": step}
        atomic_torch_save({**inference, "validation": metrics}, run_dir / MODEL_NAME)

    log = _MetricsLog(run_dir, step)
    generator = torch.Generator(device=device)
    validation: dict[str, Any] = {}
    steps_per_epoch = math.ceil(len(train_indices) / settings.batch_size)
    window_start, window_samples = time.perf_counter(), 0
    bar = tqdm(total=settings.steps, initial=step, desc="train", unit="step", disable=not progress)
    restore_sigterm = _sigterm_as_interrupt()
    try:
        while step < settings.steps:
            epoch, offset = divmod(step, steps_per_epoch)
            epoch_rng = np.random.default_rng([settings.seed, epoch])
            batches = shard_grouped_batches(train_indices, dataset.shard_of_index, settings.batch_size, epoch_rng)
            batches = batches[offset:]
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=batches, num_workers=settings.num_workers, pin_memory=device.type == "cuda"
            )
            for batch in loader:
                if step >= settings.steps:
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
                    parts.update(lr=optimizer.param_groups[0]["lr"], samples_per_s=window_samples / max(elapsed, 1e-9))
                    log.write("train", step, parts)
                    bar.set_postfix(loss=f"{parts['loss']:.4f}")
                    window_samples = 0
                if len(validation_indices) and (step % settings.validate_every == 0 or step == settings.steps):
                    validation = error_metrics(predict_dataset(model, dataset, validation_indices, settings.batch_size))
                    log.write("validation", step, validation)
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
    except KeyboardInterrupt:
        save_checkpoint()
        raise
    finally:
        restore_sigterm()
        bar.close()
        log.close()
    plot_curves(run_dir / METRICS_NAME, run_dir / "training_curves.png")
    return validation


def plot_curves(metrics_path: Path, out_path: Path) -> None:
    """PNG of the training loss and the validation errors over steps, read from metrics.jsonl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train_records = [record for record in records if record["split"] == "train"]
    validation_records = [record for record in records if record["split"] == "validation"]
    figure, (loss_axis, error_axis) = plt.subplots(1, 2, figsize=(10, 4))
    train_steps = [record["step"] for record in train_records]
    for key, label in (("loss", "total"), ("position_loss", "position"), ("orientation_loss", "orientation")):
        loss_axis.semilogy(train_steps, [record[key] for record in train_records], label=label)
    loss_axis.set(xlabel="step", title="training loss")
    loss_axis.legend()
    steps = [r["step"] for r in validation_records]
    error_axis.plot(steps, [r["position_error_mm"]["mean"] for r in validation_records], "o-", label="position mm")
    error_axis.plot(steps, [r["rotation_error_deg"]["mean"] for r in validation_records], "s-", label="rotation deg")
    error_axis.set(xlabel="step", title="held-out mean error")
    error_axis.legend()
    figure.tight_layout()
    atomic_write(out_path, lambda temporary: figure.savefig(temporary, dpi=100, format="png"))
    plt.close(figure)
