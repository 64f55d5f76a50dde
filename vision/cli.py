"""`inhand vision {render,train,eval,export} ...`: the pose-estimator pipeline from renders to an ONNX file."""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import numpy as np

from sim.config_loading import ConfigError, parse_overrides
from vision.config import VisionConfig, load_vision_config
from vision.dataset import DatasetError
from vision.inference import CheckpointError


def _config(arguments: argparse.Namespace) -> VisionConfig:
    return load_vision_config(arguments.config, parse_overrides(arguments.set))


def _render(arguments: argparse.Namespace) -> int:
    config = _config(arguments)
    image_size = config.dataset.image_size
    if arguments.synthetic:
        from vision.synthetic import render_synthetic_sample

        render_sample = functools.partial(
            render_synthetic_sample, image_size=image_size, camera_count=config.model.camera_count
        )
    else:
        try:
            from sim.render import render_pose_sample
        except ImportError as error:
            print(
                f"inhand vision render: the MuJoCo renderer sim.render.render_pose_sample is not available ({error}); "
                "pass --synthetic to render the stand-in cube scene instead",
                file=sys.stderr,
            )
            return 2
        render_sample = functools.partial(render_pose_sample, image_size=image_size)
    from vision.dataset import render_dataset

    manifest = render_dataset(
        render_sample,
        arguments.count,
        arguments.out,
        camera_names=config.dataset.camera_names,
        image_size=image_size,
        seed_start=arguments.seed_start,
        shard_size=config.dataset.shard_size,
        workers=arguments.workers,
        compress=config.dataset.compress,
        start_method=arguments.start_method,
    )
    print(json.dumps({"dataset": str(arguments.out), "count": manifest["count"], "shards": len(manifest["shards"])}))
    return 0


def _train(arguments: argparse.Namespace) -> int:
    from vision.train import train

    metrics = train(_config(arguments), arguments.data, arguments.run_dir, resume=arguments.resume)
    print(json.dumps({"run_dir": str(arguments.run_dir), "validation": metrics}))
    return 0


def _eval(arguments: argparse.Namespace) -> int:
    from vision.evaluate import evaluate

    config = _config(arguments)
    metrics = evaluate(arguments.checkpoint, arguments.data, arguments.out, config.evaluation, arguments.max_samples,
                       device=config.train.device)
    print(json.dumps(metrics, indent=2))
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from vision.inference import export_onnx, model_from_checkpoint, onnx_max_difference

    model, config = model_from_checkpoint(arguments.checkpoint)
    path = export_onnx(model, arguments.out)
    rng = np.random.default_rng(0)
    size = config.model.input_size
    images = rng.integers(0, 256, size=(4, config.model.camera_count, size, size, 3), dtype=np.uint8)
    difference = onnx_max_difference(model, path, images)
    print(json.dumps({"onnx": str(path), "max_abs_difference_vs_torch": difference}))
    if difference > arguments.tolerance:
        print(f"inhand vision export: ONNX outputs differ from torch by {difference:.2e} > {arguments.tolerance:.0e}",
              file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of `inhand vision`."""
    parser = argparse.ArgumentParser(prog="inhand vision", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    def add(name: str, helptext: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=helptext, description=helptext)
        command.add_argument("--config", type=Path, default=None, help="vision YAML (default config/vision.yaml)")
        command.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                             help="override a config key, e.g. --set model.input_size=128 (repeatable)")
        return command

    render = add("render", "render a sharded pose dataset (resumes a partial one in the same folder)")
    render.add_argument("--out", type=Path, required=True, help="dataset folder")
    render.add_argument("--count", type=int, required=True, help="number of samples")
    render.add_argument("--seed-start", type=int, default=0, help="randomization seed of the first sample")
    render.add_argument("--workers", type=int, default=0, help="render processes (0: render in this process)")
    render.add_argument("--start-method", choices=("spawn", "forkserver"), default="spawn")
    render.add_argument("--synthetic", action="store_true", help="use the stand-in renderer (no MuJoCo, no EGL)")
    render.set_defaults(run=_render)

    train = add("train", "train the pose network on a dataset (--resume continues a run)")
    train.add_argument("--data", type=Path, required=True, help="dataset folder")
    train.add_argument("--run-dir", type=Path, required=True, help="folder for checkpoints and metrics")
    train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    train.set_defaults(run=_train)

    evaluate = add("eval", "position/rotation errors on a held-out dataset, JSON + PNG grid")
    evaluate.add_argument("--checkpoint", type=Path, required=True)
    evaluate.add_argument("--data", type=Path, required=True, help="held-out dataset folder (unseen seeds)")
    evaluate.add_argument("--out", type=Path, required=True, help="folder for metrics.json and samples.png")
    evaluate.add_argument("--max-samples", type=int, default=None)
    evaluate.set_defaults(run=_eval)

    export = add("export", "export a checkpoint to ONNX and check it against torch")
    export.add_argument("--checkpoint", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    export.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted output difference")
    export.set_defaults(run=_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `inhand vision ...`."""
    arguments = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(arguments.run(arguments))
    except (ConfigError, DatasetError, CheckpointError) as error:
        print(f"inhand vision {arguments.command}: {error}", file=sys.stderr)
        return 2
