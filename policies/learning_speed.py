"""`inhand bench learning`: how fast training runs learn, read from their run folders.

Per run: the training window (successes per episode over the run's last runner.stats_window episodes, as it
logged them) against env steps and training hours, and every kept checkpoint evaluated the way `inhand eval`
does, at the fixed ranges of one env YAML (config/env.yaml, Dactyl's full randomization, unless --config), with
the same episodes and seed for all. Runs trained under different randomization (fixed ranges, ADR) are so
compared on one test: an ADR run's training window counts episodes at its own, narrower ranges. Prints one JSON
object; --plot draws the evaluations and the training windows against env steps and against training hours.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from policies.cli import FORCE_HELP
from policies.config import EnvSection, config_from_mapping
from sim.atomic import atomic_write
from sim.config_loading import ConfigError
from sim.metrics_log import METRICS_NAME

CONFIG_NAME = "config.yaml"
SECONDS_PER_HOUR = 3600.0


def read_training_window(run_dir: Path) -> list[dict[str, float]]:
    """The logged training window of a run folder: env_steps, hours and successes per episode, one row per update
    that had a full enough window to report (rows without one are skipped)."""
    path = run_dir / METRICS_NAME
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {METRICS_NAME}; give run folders written by `inhand train`")
    series = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            steps, seconds, successes = row["env_steps"], row["train_seconds"], row["recent_successes_mean"]
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ConfigError(f"{path}:{number}: not a training metrics row with env_steps, train_seconds and "
                              f"recent_successes_mean ({error})") from error
        if successes is not None:
            series.append({"env_steps": int(steps), "hours": seconds / SECONDS_PER_HOUR,
                           "successes_mean": float(successes)})
    return series


def run_facts(run_dir: Path) -> dict[str, Any]:
    """What a run trained with: randomization mode, goal mode, seed, env YAML (from its config.yaml)."""
    import yaml

    from policies.sim_env import section_env_config

    path = run_dir / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(f"{run_dir}: no {CONFIG_NAME}; give run folders written by `inhand train`")
    config = config_from_mapping(yaml.safe_load(path.read_text()), str(path))
    facts = {"seed": config.seed, "num_envs": config.env.num_envs, "env_factory": config.env.factory}
    if config.env.factory != EnvSection().factory:  # another env: no inhand env YAML to describe
        return {**facts, "randomization_mode": None, "goal_mode": None, "env_config": None}
    env_config = section_env_config(config.env)
    return {**facts, "randomization_mode": env_config.randomization.mode, "goal_mode": env_config.task.goal_mode,
            "env_config": config.env.config or "config/env.yaml"}


def evaluate_checkpoints(run_dir: Path, episodes: int, num_envs: int, seed: int, env_config: str | None,
                         goal_mode: str | None) -> list[dict[str, Any]]:
    """Every kept checkpoint of a run, oldest first: its counters and `inhand eval`'s summary at fixed ranges."""
    from policies.evaluate import evaluate, make_eval_env
    from policies.inference import InferencePolicy
    from policies.runner import checkpoint_paths
    from sim import checkpoint

    paths = checkpoint_paths(run_dir)
    if not paths:
        raise ConfigError(f"{run_dir}: no checkpoints to evaluate")
    points = []
    for path in paths:
        content = checkpoint.load(path, ("training",))
        policy = InferencePolicy.from_content(content, path)
        env, _ = make_eval_env(policy, min(num_envs, episodes), seed, env_config, goal_mode)
        try:
            summary = evaluate(policy, env, episodes, seed=seed)
        finally:
            env.close()
        points.append({"checkpoint": path.name, "update": int(content["counters"]["update"]),
                       "env_steps": int(content["counters"]["env_steps"]),
                       "hours": float(content["train_seconds"]) / SECONDS_PER_HOUR, **summary})
    return points


def measure(run_dirs: list[Path], episodes: int, num_envs: int, seed: int, env_config: str | None,
            goal_mode: str | None) -> dict[str, Any]:
    """The benchmark's JSON: per run its facts, training window and checkpoint evaluations."""
    runs = {}
    for run_dir in run_dirs:
        window = read_training_window(run_dir)
        runs[run_dir.name] = {
            "run_dir": str(run_dir), **run_facts(run_dir),
            "training_window_last": window[-1] if window else None,
            "evaluations": evaluate_checkpoints(run_dir, episodes, num_envs, seed, env_config, goal_mode),
            "training_window": window,
        }
    return {"evaluation": {"env_config": env_config or "config/env.yaml", "fixed_ranges": True,
                           "goal_mode": goal_mode or "the run's own", "episodes": episodes, "num_envs": num_envs,
                           "seed": seed, "deterministic": True},
            "runs": runs}


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """Successes per episode against env steps and against training hours: evaluations at fixed ranges (markers)
    and training windows (thin lines), one colour per run."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6))
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2)
    for index, (name, run) in enumerate(result["runs"].items()):
        colour = f"C{index}"
        window, points = run["training_window"], run["evaluations"]
        for axis, x_key, scale in ((axes[0], "env_steps", 1e-6), (axes[1], "hours", 1.0)):
            if window:
                axis.plot([row[x_key] * scale for row in window], [row["successes_mean"] for row in window],
                          color=colour, linewidth=0.7, alpha=0.5,
                          label=f"{name}: training window ({run['randomization_mode']})")
            axis.plot([point[x_key] * scale for point in points],
                      [point["consecutive_successes"]["mean"] for point in points], color=colour, marker="o",
                      linewidth=1.5, label=f"{name}: eval at fixed ranges")
    for axis, label in zip(axes, ("env steps (millions)", "training hours")):
        axis.set_xlabel(label, fontsize=8)
        axis.set_ylabel("consecutive successes per episode", fontsize=8)
        axis.tick_params(labelsize=7)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    figure.subplots_adjust(left=0.07, right=0.98, bottom=0.14, top=0.95, wspace=0.25)
    return atomic_write(path, lambda temp: figure.savefig(temp, format="png", dpi=90))


def main(argv: list[str]) -> int:
    """Print the learning-speed comparison of run folders as one JSON object."""
    parser = argparse.ArgumentParser(prog="inhand bench learning", description=__doc__.splitlines()[0])
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders written by `inhand train`")
    parser.add_argument("--episodes", type=int, default=100, help="evaluation episodes per checkpoint")
    parser.add_argument("--num-envs", type=int, default=20, help="envs stepped together in each evaluation")
    parser.add_argument("--seed", type=int, default=12345, help="evaluation env seed (as `inhand eval`)")
    parser.add_argument("--config", metavar="ENV_YAML", help="env YAML to evaluate in, at its fixed ranges "
                                                             "(default config/env.yaml)")
    parser.add_argument("--goal-mode", choices=("z", "xyz"), help="evaluate in this goal mode (default: each "
                                                                  "run's own)")
    parser.add_argument("--plot", metavar="OUT.png", help="also draw the curves into this PNG")
    parser.add_argument("--force", action="store_true", help=FORCE_HELP)
    args = parser.parse_args(argv)
    from sim.errors import InhandError
    from sim.output_paths import check_output_file

    run_dirs = [Path(run_dir) for run_dir in args.run_dirs]
    try:
        if args.episodes < 1 or args.num_envs < 1:
            raise ConfigError(f"--episodes ({args.episodes}) and --num-envs ({args.num_envs}) must be >= 1")
        if len({run_dir.name for run_dir in run_dirs}) != len(run_dirs):
            raise ConfigError(f"run folders must have distinct names (they label the runs): {args.run_dirs}")
        for run_dir in run_dirs:
            if not run_dir.is_dir():
                raise ConfigError(f"{run_dir}: not a folder; give run folders written by `inhand train`")
        if args.plot:
            check_output_file(args.plot, "PNG image", run_dirs, args.force, "--plot")
        result = measure(run_dirs, args.episodes, args.num_envs, args.seed, args.config, args.goal_mode)
        if args.plot:
            result["plot"] = str(plot(result, args.plot))
    except InhandError as error:
        print(f"inhand bench learning: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
