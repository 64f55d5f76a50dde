"""`inhand train`, `inhand eval`, `inhand export`: each takes its argv list and returns an exit code."""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path


from policies.config import EnvSection
from sim.cores import resolve_device
from sim.config_loading import ConfigError, parse_overrides
from sim.errors import CheckpointError, InhandError
from sim.output_paths import check_output_dir, check_output_file
from sim.paths import data_path

FORCE_HELP = "write even over an existing file of another kind or inside a bag or input folder (never over an input)"
DEFAULT_CONFIG = "config/train.yaml"  # under the package's share folder (sim.paths.data_path), not the current one


def default_config() -> Path:
    """The installed train YAML, whatever the current folder."""
    return data_path(DEFAULT_CONFIG)


def train(argv: list[str]) -> int:
    """Train (or resume) an LSTM PPO policy; prints a JSON summary at the end."""
    parser = argparse.ArgumentParser(prog="inhand train", description=train.__doc__)
    parser.add_argument("--config", help=f"train YAML (default {DEFAULT_CONFIG}; on --resume: the run's own)")
    parser.add_argument("--backend", choices=("local", "ray"), default="local")
    parser.add_argument("--resume", metavar="RUN_DIR|FILE.pt",
                        help="continue a run from its newest checkpoint (a run folder) or from one training "
                             "checkpoint file, which holds the whole run (weights, optimizer, RNG, metrics)")
    parser.add_argument("--init", metavar="CHECKPOINT",
                        help="start a new run from this checkpoint's weights (e.g. xyz from a z policy); "
                             "counters and optimizer start fresh")
    parser.add_argument("--run-dir", metavar="DIR", help="run folder (default: runner.runs_dir/train-<time>)")
    parser.add_argument("--address", help="Ray cluster to join (ray backend; default: ray.address, else local)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, e.g. --set runner.total_updates=100 (repeatable)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
    args = parser.parse_args(argv)
    from sim import checkpoint
    from policies.config import load_train_config
    from policies.runner import LocalBackend, Runner, resume_config, resume_paths

    try:
        overrides = parse_overrides(args.overrides)
        resume_from = None
        if args.resume:
            path, run_dir = resume_paths(Path(args.resume), args.run_dir)
            resume_from = checkpoint.load(path, kinds=("training",))
            requested = load_train_config(args.config) if args.config else None
            config = resume_config(resume_from["config"], requested, overrides, str(path))
            if run_dir is None:
                run_dir = Path(config.runner.runs_dir) / time.strftime(f"{path.stem.split('.')[0]}-%Y%m%d-%H%M%S")
        else:
            config = load_train_config(args.config or default_config(), overrides)
            run_dir = Path(args.run_dir or Path(config.runner.runs_dir) / time.strftime("train-%Y%m%d-%H%M%S"))
            check_output_dir(run_dir, [args.config, args.init], args.force, "--run-dir")
            if (run_dir / "checkpoints").exists() or (run_dir / "metrics.jsonl").exists():
                raise ConfigError(f"{run_dir} already holds a run; continue it with --resume {run_dir} "
                                  f"or choose another --run-dir")
        resolve_device(config.runner.device, "runner.device")  # before any env is built
        init_from = None
        if args.init:
            if args.resume:
                raise ConfigError("--init starts a new run and --resume continues one; give only one of them")
            init_from = checkpoint.load(args.init, checkpoint.POLICY_KINDS)
        if args.backend == "ray":
            from policies.ray_backend import RayBackend

            backend = RayBackend(config, address=args.address)
        else:
            backend = LocalBackend(config)
        try:
            runner = Runner(config, backend, run_dir, resume_from=resume_from, progress=not args.no_progress,
                            init_from=init_from)
            summary = runner.train()
        finally:
            backend.close()
    except InhandError as error:
        print(f"inhand train: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


def eval_command(argv: list[str]) -> int:
    """Evaluate a checkpoint; prints JSON: consecutive successes (mean, median, p90), drop and time-out rates, and
    for the inhand sim how often goals were reached by how far they started from the cube."""
    parser = argparse.ArgumentParser(prog="inhand eval", description=eval_command.__doc__)
    parser.add_argument("checkpoint", help="training or inference checkpoint (.pt)")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--goal-mode", choices=("z", "xyz"), help="override the goal mode the policy trained with")
    parser.add_argument("--config", metavar="ENV_YAML",
                        help="env YAML to evaluate in, always at its fixed ranges (default: config/env.yaml, "
                             "Dactyl's full randomization, whatever the policy trained with)")
    parser.add_argument("--goal-max-angle", type=float, metavar="RAD",
                        help="xyz goals at most this far from the cube, as a training curriculum draws them "
                             "(default: the env YAML's task.goal_max_angle_rad, pi in config/env.yaml: goals anywhere)")
    parser.add_argument("--video", metavar="OUT.mp4", help="record env 0's first episode")
    parser.add_argument("--num-envs", type=int, default=8, help="envs stepped together (at most --episodes)")
    parser.add_argument("--seed", type=int, default=12345, help="env seed (keep it apart from training seeds)")
    parser.add_argument("--stochastic", action="store_true", help="sample actions instead of the most likely")
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
    args = parser.parse_args(argv)
    from policies.evaluate import evaluate, make_eval_env
    from policies.inference import InferencePolicy
    from sim.batch import critic_goal_angle

    try:
        if args.episodes < 1 or args.num_envs < 1:
            raise ConfigError(f"--episodes ({args.episodes}) and --num-envs ({args.num_envs}) must be >= 1")
        # the bound of the training key, so eval takes exactly the curricula a run can train on
        fields = {field.name: field for field in dataclasses.fields(EnvSection)}
        low, high = fields["goal_max_angle_rad"].metadata["bound"]
        if args.goal_max_angle is not None and not low <= args.goal_max_angle <= high:
            raise ConfigError(f"--goal-max-angle ({args.goal_max_angle}): give an angle in radians in "
                              f"[{low}, pi], as env.goal_max_angle_rad takes")
        if args.video:
            check_output_file(args.video, "MP4 video", [args.checkpoint], args.force, "--video")
        policy = InferencePolicy.load(args.checkpoint)
        # in-process envs on physics threads: they render (for --video) and take any --num-envs, whatever worker
        # processes the policy trained with
        env, section = make_eval_env(policy, min(args.num_envs, args.episodes), args.seed, args.config,
                                     args.goal_mode, args.goal_max_angle)
        sim_factory = section.factory == EnvSection().factory
        try:
            summary = evaluate(policy, env, args.episodes, seed=args.seed, deterministic=not args.stochastic,
                               video=args.video, goal_angle=critic_goal_angle if sim_factory else None)
        finally:
            env.close()
    except InhandError as error:
        print(f"inhand eval: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"checkpoint": args.checkpoint, "goal_mode": section.goal_mode,
                      "env_config": section.config or "config/env.yaml" if sim_factory else None,
                      "goal_max_angle_rad": section.goal_max_angle_rad, **summary}))
    return 0


def export(argv: list[str]) -> int:
    """Export a checkpoint for deployment: inference-only policy.pt and stateful policy.onnx; prints JSON."""
    parser = argparse.ArgumentParser(prog="inhand export", description=export.__doc__)
    parser.add_argument("checkpoint", help="training or inference checkpoint (.pt)")
    parser.add_argument("--out-dir", required=True, help="folder for policy.pt and policy.onnx")
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
    args = parser.parse_args(argv)
    from policies.inference import InferencePolicy, export_inference, export_onnx

    out_dir = check_output_dir(args.out_dir, [args.checkpoint], args.force, "--out-dir")
    check_output_file(out_dir / "policy.pt", "torch checkpoint", [args.checkpoint], args.force, "--out-dir")
    check_output_file(out_dir / "policy.onnx", "ONNX model", [args.checkpoint], args.force, "--out-dir")
    try:
        policy = InferencePolicy.load(args.checkpoint)
    except CheckpointError as error:
        print(f"inhand export: {error}", file=sys.stderr)
        return 2
    paths = [export_inference(policy, out_dir / "policy.pt"), export_onnx(policy, out_dir / "policy.onnx")]
    print(json.dumps({str(path): path.stat().st_size for path in paths}))
    return 0
