"""`inhand bench vision`: render time per sample and pose-network inference time at batch 1 on 2 threads, as JSON."""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sim.config_loading import parse_overrides
from vision.config import load_vision_config
from vision.inference import OnnxPoseEstimator, PoseEstimator, export_onnx, model_from_checkpoint
from vision.model import PoseNet
from vision.preprocess import preprocess

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
    figures["parameters"] = sum(parameter.numel() for parameter in model.parameters())
    print(json.dumps(figures))
    return 0
