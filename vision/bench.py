"""`inhand bench vision`: render time per sample, pose-network inference time at batch 1 and training-step time in
float32 and bfloat16, on 2 threads, as JSON."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sim.config_loading import parse_overrides
from vision.config import VisionConfig, load_vision_config
from vision.inference import OnnxPoseEstimator, PoseEstimator, export_onnx, model_from_checkpoint
from vision.model import PoseNet
from vision.preprocess import preprocess
from vision.train import optimization_step

THREADS = 2


def _median_ms(function: Callable[[], object], repeats: int, warmup: int = 5) -> float:
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times))


def render_ms_per_sample(image_size: int, samples: int) -> float:
    """Median ms of sim.render.render_pose_sample (cube state, visual randomization, all cameras, postprocess)."""
    from sim.render import render_pose_sample

    seeds = iter(range(samples + 1))
    # one warm-up builds the scene and GL context; every sample gets its own seed, so its own rollout length
    return _median_ms(lambda: render_pose_sample(next(seeds), image_size=image_size), samples, warmup=1)


def train_step_ms(config: VisionConfig, precision: str, repeats: int) -> float:
    """Median ms of one training step (forward, loss, backward, AdamW) at train.batch_size on random images."""
    config = dataclasses.replace(config, train=dataclasses.replace(config.train, precision=precision))
    torch.manual_seed(0)
    model = PoseNet(config.model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.train.learning_rate)
    size, batch_size = config.model.input_size, config.train.batch_size
    batch = {
        "images": torch.randn(batch_size, config.model.camera_count, size, size, 3),
        "position": 0.01 * torch.randn(batch_size, 3),
        "quaternion": torch.nn.functional.normalize(torch.randn(batch_size, 4), dim=-1),
    }
    return _median_ms(lambda: optimization_step(model, optimizer, batch, config), repeats, warmup=2)


def main(argv: list[str] | None = None) -> int:
    """Print JSON: ms per sample for rendering, preprocessing, the torch network, torch end to end and ONNX Runtime."""
    parser = argparse.ArgumentParser(prog="inhand bench vision", description=__doc__)
    parser.add_argument("--config", type=Path, default=None, help="vision YAML (default config/vision.yaml)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="weights to time (default: untrained)")
    parser.add_argument("--input-size", type=int, default=None, help="override model.input_size")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a vision config key, e.g. --set dataset.image_size=96 (repeatable)")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime figure")
    parser.add_argument("--render-samples", type=int, default=10, help="samples timed for the render figure")
    parser.add_argument("--no-render", action="store_true", help="skip the MuJoCo render figure")
    parser.add_argument("--train-repeats", type=int, default=10,
                        help="training steps timed per precision (0: skip the training figures)")
    arguments = parser.parse_args(sys.argv[1:] if argv is None else argv)

    torch.set_num_threads(THREADS)
    overrides = parse_overrides(arguments.set)
    if arguments.input_size is not None:
        overrides["model.input_size"] = arguments.input_size
    config = load_vision_config(arguments.config, overrides)
    if arguments.checkpoint is None:
        model = PoseNet(config.model).eval()
    else:
        model, config = model_from_checkpoint(arguments.checkpoint)
    size, cameras, render_size = config.model.input_size, config.model.camera_count, config.dataset.image_size
    images = np.random.default_rng(0).integers(0, 256, size=(cameras, render_size, render_size, 3), dtype=np.uint8)
    estimator = PoseEstimator(model)
    network_input = preprocess(images, size, cameras, config.model.crop)

    def network() -> None:
        with torch.inference_mode():
            model(network_input)

    figures = {
        "input_size": size,
        "render_size": render_size,
        "cameras": cameras,
        "threads": THREADS,
        "batch": 1,
        "preprocess_ms": _median_ms(lambda: preprocess(images, size, cameras, config.model.crop), arguments.repeats),
        "torch_network_ms": _median_ms(network, arguments.repeats),
        "torch_end_to_end_ms": _median_ms(lambda: estimator.predict(images), arguments.repeats),
    }
    if not arguments.no_onnx:
        with tempfile.TemporaryDirectory() as folder:
            onnx_estimator = OnnxPoseEstimator(export_onnx(model, Path(folder) / "pose.onnx"), threads=THREADS)
            figures["onnxruntime_end_to_end_ms"] = _median_ms(lambda: onnx_estimator.predict(images), arguments.repeats)
    if not arguments.no_render:
        render_ms = render_ms_per_sample(render_size, arguments.render_samples)
        figures["render_ms_per_sample"] = render_ms
        figures["render_ms_per_camera"] = render_ms / cameras
    if arguments.train_repeats > 0:
        for precision in ("fp32", "bf16"):
            figures[f"train_step_ms_{precision}"] = train_step_ms(config, precision, arguments.train_repeats)
        figures["train_batch"] = config.train.batch_size
        figures["train_bf16_speedup"] = figures["train_step_ms_fp32"] / figures["train_step_ms_bf16"]
    figures["parameters"] = sum(parameter.numel() for parameter in model.parameters())
    print(json.dumps(figures))
    return 0
