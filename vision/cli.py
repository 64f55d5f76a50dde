"""`inhand vision {render,train,eval,export,convert} ...`: the pose-estimator pipeline from renders to an ONNX file."""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sim.config_loading import parse_overrides
from sim.errors import CheckpointError, InhandError, UsageError
from sim.output_paths import check_output_dir, check_output_file
from vision.config import VisionConfig, load_vision_config
from vision.dataset import DEFAULT_CUBE_STATES

PALM_CUBE_STATES = "on and off the palm (sim.palm_renders)"

if TYPE_CHECKING:
    from policies.inference import InferencePolicy


def _config(arguments: argparse.Namespace) -> VisionConfig:
    return load_vision_config(arguments.config, parse_overrides(arguments.set))


def load_render_policy(path: str) -> tuple[InferencePolicy, dict[str, Any]]:
    """A policies checkpoint (training or inference) -> (InferencePolicy, env task options it was trained with)."""
    from policies.inference import InferencePolicy
    from sim.batch import OBSERVATION_SIZES

    policy = InferencePolicy.load(path)
    spec = policy.spec
    if spec.policy_size != OBSERVATION_SIZES["policy"]:
        raise CheckpointError(
            f"{path}: the policy reads {spec.policy_size} observation values but the inhand sim gives "
            f"{OBSERVATION_SIZES['policy']}: not a policy of the inhand sim (env.factory {policy.config.env.factory})"
        )
    options: dict[str, Any] = {"action_type": spec.action_type}
    if spec.action_type == "discrete":
        options["action_bins"] = spec.num_bins
    if policy.config.env.goal_mode is not None:
        options["goal_mode"] = policy.config.env.goal_mode
    return policy, options


def _render(arguments: argparse.Namespace) -> int:
    check_output_dir(arguments.out, [arguments.config, arguments.policy], arguments.force, "--out")
    config = _config(arguments)
    image_size = config.dataset.image_size
    if arguments.synthetic and arguments.policy is not None:
        raise UsageError("--policy needs the MuJoCo renderer: the --synthetic stand-in scene has no hand to act with")
    if arguments.palm and (arguments.synthetic or arguments.policy is not None):
        raise UsageError("--palm renders its own cube states with the MuJoCo renderer: no --synthetic, no --policy")
    policy = None if arguments.policy is None else str(arguments.policy.resolve())
    cube_states = f"policy {policy}" if policy else DEFAULT_CUBE_STATES
    if arguments.palm:
        from sim.palm_renders import render_palm_sample

        render_sample = functools.partial(render_palm_sample, image_size=image_size)
        cube_states = PALM_CUBE_STATES
    elif arguments.synthetic:
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
        if policy is not None:
            load_render_policy(policy)
        render_sample = functools.partial(
            render_pose_sample, image_size=image_size, policy_path=policy, load_policy=load_render_policy
        )
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
        cube_states=cube_states,
    )
    print(json.dumps({"dataset": str(arguments.out), "count": manifest["count"], "shards": len(manifest["shards"])}))
    return 0


def _train(arguments: argparse.Namespace) -> int:
    from vision.train import train

    check_output_dir(arguments.run_dir, [arguments.config, *arguments.data], arguments.force, "--run-dir")
    summary = train(_config(arguments), arguments.data, arguments.run_dir, resume=arguments.resume)
    print(json.dumps({"run_dir": str(arguments.run_dir), **summary}))
    return 0


def _palm_train(arguments: argparse.Namespace) -> int:
    from sim.config import load_env_config
    from vision.on_palm import train_and_evaluate

    inputs = [arguments.config, *arguments.data, *arguments.heldout]
    check_output_file(arguments.out, "torch checkpoint", inputs, arguments.force, "--out")
    check_output_file(arguments.out.with_suffix(".eval.json"), "JSON file", inputs, arguments.force, "--out")
    config = _config(arguments)
    metrics = train_and_evaluate(config.palm, config.augmentation, arguments.data, arguments.heldout, arguments.out,
                                 load_env_config().task.drop_height_m)
    print(json.dumps(metrics, indent=2))
    return 0


def _eval(arguments: argparse.Namespace) -> int:
    from vision.evaluate import evaluate

    if arguments.checkpoint is None and arguments.checkpoint_option is None:
        raise UsageError("no checkpoint: give it as the CHECKPOINT argument (or with --checkpoint)")
    if arguments.checkpoint is not None and arguments.checkpoint_option is not None:
        raise UsageError("two checkpoints: give it as the CHECKPOINT argument or with --checkpoint, not both")
    checkpoint = arguments.checkpoint if arguments.checkpoint is not None else arguments.checkpoint_option
    out = arguments.out
    if out is None:
        out = checkpoint.resolve().parent / f"{checkpoint.stem}-eval-{arguments.data.resolve().name}"
    inputs = [checkpoint, arguments.data, arguments.config]
    check_output_dir(out, inputs, arguments.force, "--out")
    check_output_file(out / "samples.png", "PNG image", inputs, arguments.force, "--out")
    config = _config(arguments)
    metrics = evaluate(checkpoint, arguments.data, out, config.evaluation, arguments.max_samples,
                       device=config.train.device)
    print(json.dumps(metrics, indent=2))
    return 0


def _export(arguments: argparse.Namespace) -> int:
    from vision.inference import export_onnx, model_from_checkpoint, onnx_max_difference

    check_output_file(arguments.out, "ONNX model", [arguments.checkpoint, arguments.config], arguments.force, "--out")
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


def _convert(arguments: argparse.Namespace) -> int:
    from vision.convert import convert_legacy_pose

    check_output_file(arguments.out, "torch checkpoint", [arguments.source], arguments.force, "--out")
    kind = convert_legacy_pose(arguments.source, arguments.out)
    print(json.dumps({"source": str(arguments.source), "out": str(arguments.out), "kind": kind}))
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
        command.add_argument("--force", action="store_true",
                             help="write even over an existing file of another kind or inside a bag or input folder "
                                  "(never over an input)")
        return command

    render = add("render", "render a sharded pose dataset (resumes a partial one in the same folder)")
    render.add_argument("--out", type=Path, required=True, help="dataset folder")
    render.add_argument("--n", "--count", dest="count", type=int, required=True, help="number of samples")
    render.add_argument("--seed", "--seed-start", dest="seed_start", type=int, default=0,
                        help="randomization seed of the first sample (sample i gets seed + i)")
    render.add_argument("--workers", type=int, default=0, help="render processes (0: render in this process)")
    render.add_argument("--start-method", choices=("spawn", "forkserver"), default="spawn")
    render.add_argument("--synthetic", action="store_true", help="use the stand-in renderer (no MuJoCo, no EGL)")
    render.add_argument("--palm", action="store_true",
                        help="cubes on and off the palm (falling, on the table), for the drop detector "
                             "(`inhand vision palm-train`)")
    render.add_argument("--policy", type=Path, default=None, metavar="CHECKPOINT",
                        help="policies checkpoint (training or inference) whose rollouts give the cube states "
                             "(default: random actions)")
    render.set_defaults(run=_render)

    train = add("train", "train the pose network on a dataset (--resume continues a run)")
    train.add_argument("--data", type=Path, nargs="+", required=True, metavar="DIR",
                       help="dataset folder(s); several are read as one (e.g. random-action and policy renders)")
    train.add_argument("--run-dir", type=Path, required=True, help="folder for checkpoints and metrics")
    train.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoint.pt")
    train.set_defaults(run=_train)

    palm = add("palm-train", "train the drop detector (is the cube on the palm?) on `render --palm` datasets; "
                             "writes OUT and OUT's .eval.json (held-out accuracy, drops detected)")
    palm.add_argument("--data", type=Path, nargs="+", required=True, metavar="DIR", help="training dataset folder(s)")
    palm.add_argument("--heldout", type=Path, nargs="+", required=True, metavar="DIR",
                      help="held-out dataset folder(s) (unseen seeds)")
    palm.add_argument("--out", type=Path, required=True, help="checkpoint file to write (.pt)")
    palm.set_defaults(run=_palm_train)

    evaluate = add("eval", "position/rotation errors on a held-out dataset, JSON + PNG grid")
    evaluate.add_argument("checkpoint", type=Path, nargs="?", default=None, metavar="CHECKPOINT",
                          help="pose-estimator checkpoint (model.pt or a training checkpoint.pt)")
    evaluate.add_argument("--checkpoint", dest="checkpoint_option", type=Path, default=None, metavar="CHECKPOINT",
                          help="the checkpoint, as an option instead of the argument")
    evaluate.add_argument("--data", type=Path, required=True, help="held-out dataset folder (unseen seeds)")
    evaluate.add_argument("--out", type=Path, default=None,
                          help="folder for metrics.json and samples.png (default: next to the checkpoint, "
                               "<checkpoint stem>-eval-<data folder name>)")
    evaluate.add_argument("--max-samples", type=int, default=None)
    evaluate.set_defaults(run=_eval)

    export = add("export", "export a checkpoint to ONNX and check it against torch")
    export.add_argument("--checkpoint", type=Path, required=True)
    export.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    export.add_argument("--tolerance", type=float, default=1e-4, help="largest accepted output difference")
    export.set_defaults(run=_export)

    convert_help = "rewrite a pose-estimator file from before the common checkpoint format in that format"
    convert = commands.add_parser("convert", help=convert_help, description=convert_help)
    convert.add_argument("source", type=Path, metavar="OLD.pt", help="old model.pt or checkpoint.pt")
    convert.add_argument("--out", type=Path, required=True, metavar="NEW.pt", help="file to write (not OLD.pt)")
    convert.add_argument("--force", action="store_true", help="write over an existing file of another kind")
    convert.set_defaults(run=_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `inhand vision ...`."""
    arguments = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(arguments.run(arguments))
    except InhandError as error:
        print(f"inhand vision {arguments.command}: {error}", file=sys.stderr)
        return 2
