"""`inhand bench fidelity`: is the deployed loop the env the policy trained in?

The shipped policy runs N trials in each of three loops, on the same env config (config/env.yaml, Dactyl's full
randomization, the policy's goal mode) and seeds: trial i of every loop starts from the env reset with
episode_seed(seed, i), so the three face the same physics, unmodeled-effect draws and cube placement trial by trial
(the goals differ: the goal manager draws its own):
  eval    the env itself (ReorientBatch stepped by the policy, as `inhand eval` does);
  state   launch/sim_state.launch.yaml on DDS: the sim driver, goal manager and policy as processes, the policy and
          goal manager reading the cube's true pose over the topics;
  vision  launch/sim.launch.yaml on DDS: the same with the pose estimator and its drop detector on rendered cameras;
  nodes   (asked for with --loops) the state loop's node logic in one process without transport: the sim driver's
          SimHand, the policy node's PolicyCore and the goal manager's TrialLogic called in turn each period. It
          separates what the nodes compute from DDS and scheduling, and costs what the env costs, so it affords the
          trials a comparison of these heavy-tailed successes needs.
Per loop: consecutive successes per trial (mean, median), drop_rate (trials whose cube fell in the sim), and
drops_detected_rate (of those, the ones the goal manager ended as a drop); p-values of a two-sided Mann-Whitney U test
of successes per trial, each loop against eval; and safety_altered_fraction, the share of commanded control periods
in which the driver's safety filter changed the policy's command (both loops together). The loops run a few times
slower than real time (--real-time-factor) so a loaded machine keeps the 80 ms control period.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ros_nodes.bench_system import launch_system, stop_system
from ros_nodes.bag import BagReader
from ros_nodes.domains import quiet_domain
from ros_nodes.trial_report import Trial, read_run
from sim.errors import CheckpointError
from sim.output_paths import check_output_dir
from sim.paths import share_directory

POLICY = "assets/checkpoints/policy_z.pt"
POSE = "assets/checkpoints/pose_estimator.pt"
PALM = "assets/checkpoints/palm_detector.pt"
LOOPS = ("eval", "state", "vision", "nodes")
DEFAULT_LOOPS = ("eval", "state", "vision")


def loop_summary(successes: list[int], fell: list[bool], reported_drop: list[bool]) -> dict[str, Any]:
    """Successes per trial, their mean and median, the share of trials whose cube fell in the sim, the share of
    those reported as drops, and the drops reported where none happened."""
    successes_array, fell_array = np.asarray(successes, dtype=float), np.asarray(fell, dtype=bool)
    summary: dict[str, Any] = {
        "trials": len(successes),
        "successes": [int(value) for value in successes],
        "successes_mean": round(float(successes_array.mean()), 3),
        "successes_median": float(np.median(successes_array)),
        "drop_rate": round(float(fell_array.mean()), 3),
    }
    reported = np.asarray(reported_drop, dtype=bool)
    summary["drops_in_sim"] = int(fell_array.sum())
    summary["drops_detected_rate"] = round(float(reported[fell_array].mean()), 3) if fell_array.any() else None
    summary["false_drops"] = int((reported & ~fell_array).sum())
    return summary


def mann_whitney_p(first: list[int], second: list[int]) -> float:
    """Two-sided p-value of the Mann-Whitney U test that both samples come from one distribution."""
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(first, second, alternative="two-sided").pvalue)


def run_eval(policy_path: Path, trials: int, seed: int) -> dict[str, Any]:
    """The env loop: the policy stepping the env (ReorientBatch, `inhand eval`'s config) one episode at a time,
    episode i reset with episode_seed(seed, i) as the sim driver resets its i-th."""
    from policies.inference import InferencePolicy
    from ros_nodes.hand_driver import DriverConfig, driver_env_config
    from sim.batch import ReorientBatch, episode_seed

    policy = InferencePolicy.load(policy_path)
    batch = ReorientBatch(driver_env_config(DriverConfig(checkpoint=str(policy_path))), 1, seed=seed, autoreset=False)
    successes, dropped = [], []
    try:
        for episode in range(trials):
            observation = batch.reset(episode_seed(seed, episode))
            policy.reset(1)
            while True:
                result = batch.step(policy.act(observation["policy"]))
                observation = result.observation
                if result.info["episode_done"][0]:
                    break
            successes.append(int(result.info["consecutive_successes"][0]))
            dropped.append(bool(result.info["dropped"][0]))
    finally:
        batch.close()
    # the env's own drop rule, on the sim's truth, ends its episodes: every drop is detected by construction
    return loop_summary(successes, dropped, dropped)


def run_nodes(policy_path: Path, trials: int, seed: int) -> dict[str, Any]:
    """The state loop's nodes without transport: each period the policy core reads the sim hand's sensed pose and
    fingertips, its command goes through the driver's safety filter into the hand, and the trial logic judges the
    true pose; a trial starts right after its reset, as an episode of the env does."""
    from ros_nodes.goal_manager import GoalManagerConfig, TrialLogic, task_of, trial_task
    from ros_nodes.hand_driver import DriverConfig, SimHand, safety_filter
    from ros_nodes.policy import PolicyCore

    driver = DriverConfig(checkpoint=str(policy_path), seed=seed, publish_images=False)
    hand = SimHand(driver)
    safety = safety_filter(hand.joint_map, driver, hand.batch.config)
    core = PolicyCore.load(str(policy_path))
    goals = GoalManagerConfig(checkpoint=str(policy_path), reset_wait_s=0.0, seed=seed, trials=trials)
    logic = TrialLogic(goals, trial_task(goals, task_of(goals))[0])
    successes, fell, reported = [], [], []
    try:
        while logic.state != "done":
            if logic.results:
                hand.reset()
                safety.hold()
            core.reset()
            now_s = hand.time_ns / 1e9
            logic.on_pose(now_s, *hand.cube_pose())
            events: list[str] = []
            while "ended" not in events:
                joints = hand.joint_positions()
                position, quaternion = hand.sensed_cube_pose()
                observation = core.observation(joints, position, quaternion, logic.goal, hand.sensed_fingertips())
                safety.command(core.command_targets(core.act(observation), joints), now_s)
                hand.step(safety.update(hand.held_commands(), now_s))
                now_s = hand.time_ns / 1e9
                true_position, true_quaternion = hand.cube_pose()
                events = logic.on_pose(now_s, true_position, true_quaternion)
            result = logic.results[-1]
            successes.append(result.successes)
            reported.append(result.ended_by == "drop")
            fell.append(result.ended_by == "drop")  # the trial logic judges the true pose: its drops are the sim's
    finally:
        hand.close()
    summary = loop_summary(successes, fell, reported)
    counters = safety.counters
    summary["safety"] = {"commanded_periods": counters.commanded_updates, "altered_periods": counters.altered_updates,
                         "altered_fraction": round(counters.altered_fraction, 6)}
    return summary


def commands_beyond(bag: Path, limits: np.ndarray) -> tuple[int, int]:
    """(commands recorded, those with a target outside `limits` (20, 2)): what the real hand's ranges would clamp."""
    from ros_nodes.joint_map import default_joint_map

    order = default_joint_map().command_names
    total = beyond = 0
    with BagReader(bag) as reader:
        for record in reader.messages(["/hand/command"]):
            targets = dict(zip(record.message.name, record.message.position))
            values = np.array([targets.get(name, np.nan) for name in order])
            total += 1
            beyond += bool(np.any((values < limits[:, 0] - 1e-9) | (values > limits[:, 1] + 1e-9)))
    return total, beyond


def run_loop(kind: str, arguments: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One launch file for --trials trials on its own DDS domain; its trials judged against the sim's truth."""
    from ros_nodes.joint_map import default_joint_map
    from sim.config import load_env_config

    bag, logs = work / f"{kind}_bag", work / f"{kind}_logs"
    extra = [f"trials:={arguments.trials}", f"seed:={arguments.seed}", "record_images:=false",
             f"real_time_factor:={arguments.real_time_factor}"]
    if kind == "state":
        launch_file = "launch/sim_state.launch.yaml"
        extra.append("publish_images:=false")
    else:
        launch_file = "launch/sim.launch.yaml"
        extra += [f"pose_checkpoint:={arguments.pose_checkpoint}", f"palm_checkpoint:={arguments.palm_checkpoint}"]
    started = time.monotonic()
    domain = quiet_domain()
    process = launch_system(arguments.checkpoint, bag, logs, domain, arguments.camera_size, extra,
                            launch_file=launch_file)
    try:
        try:
            process.wait(timeout=arguments.loop_timeout_s)
        except subprocess.TimeoutExpired:
            pass  # the trials it finished count
    finally:  # Ctrl-C too: the launched system stops with the benchmark
        code, output, _ = stop_system(process)
        (work / f"{kind}_launch.log").write_text(output)
    if not (bag / "metadata.yaml").is_file():
        raise RuntimeError(f"the {kind} loop left no closed bag (exit {code}):\n{output[-3000:]}")
    run = read_run(bag, load_env_config().task.drop_height_m)
    trials: list[Trial] = [trial for trial in run["trials"] if trial.ended_by != "stopped"]
    summary = loop_summary([trial.successes for trial in trials], [trial.fell_in_sim for trial in trials],
                           [trial.ended_by == "drop" for trial in trials])
    total, beyond = commands_beyond(bag, default_joint_map().hand_limits)
    return {**summary, "ended_by": {reason: sum(trial.ended_by == reason for trial in trials)
                                    for reason in ("drop", "timeout", "max_successes")},
            "safety": run["safety"], "commands": total, "commands_beyond_real_hand_limits": beyond,
            "launcher_exit_code": code, "dds_domain_id": domain, "wall_s": round(time.monotonic() - started, 1)}


def checkpoint_file(given: Path | None, shipped: str, option: str) -> Path:
    """The checkpoint given, else the shipped one, as an absolute path; CheckpointError when it is not a file."""
    path = (given or share_directory() / shipped).resolve()
    if not path.is_file():
        raise CheckpointError(f"{option} {path}: checkpoint not found" + ("" if given else f"; pass one with {option}"))
    return path


def main(argv: list[str] | None = None) -> int:
    """Run the loops, print one JSON object."""
    parser = argparse.ArgumentParser(prog="inhand bench fidelity", description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20, help="trials (episodes) per loop (default 20)")
    parser.add_argument("--seed", type=int, default=12345, help="env, driver and goal seed of every loop")
    parser.add_argument("--loops", nargs="+", choices=LOOPS, default=list(DEFAULT_LOOPS),
                        help=f"which loops (default {' '.join(DEFAULT_LOOPS)})")
    parser.add_argument("--checkpoint", type=Path, default=None, help=f"policy (default the shipped {POLICY})")
    parser.add_argument("--pose-checkpoint", type=Path, default=None, help=f"default the shipped {POSE}")
    parser.add_argument("--palm-checkpoint", type=Path, default=None, help=f"drop detector (default {PALM})")
    parser.add_argument("--camera-size", type=int, default=96, help="vision loop camera images N x N (default 96)")
    parser.add_argument("--real-time-factor", type=float, default=0.5,
                        help="sim seconds per wall second of the ROS loops (default 0.5: slack for a loaded machine)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="write the loops' bags and node logs into DIR (a new folder) instead of a temporary one")
    parser.add_argument("--loop-timeout-s", type=float, default=3600.0,
                        help="wall seconds a ROS loop may take; the trials it finished by then count (default 3600)")
    arguments = parser.parse_args(argv)
    if arguments.trials < 1 or not arguments.real_time_factor > 0 or not 16 <= arguments.camera_size <= 2048:
        parser.error("--trials must be >= 1, --real-time-factor > 0, --camera-size in 16..2048")
    arguments.checkpoint = checkpoint_file(arguments.checkpoint, POLICY, "--checkpoint")
    if "vision" in arguments.loops:
        arguments.pose_checkpoint = checkpoint_file(arguments.pose_checkpoint, POSE, "--pose-checkpoint")
        arguments.palm_checkpoint = checkpoint_file(arguments.palm_checkpoint, PALM, "--palm-checkpoint")
    result: dict[str, Any] = {"benchmark": "fidelity", "checkpoint": str(arguments.checkpoint),
                              "env_config": "config/env.yaml", "seed": arguments.seed, "trials": arguments.trials,
                              "real_time_factor": arguments.real_time_factor, "camera_size": arguments.camera_size}
    loops: dict[str, Any] = {}
    if arguments.keep is not None:
        check_output_dir(arguments.keep, [arguments.checkpoint], False, "--keep")
        taken = [str(bag) for bag in (arguments.keep / f"{kind}_bag" for kind in arguments.loops) if bag.exists()]
        if taken:
            parser.error(f"--keep {arguments.keep}: holds {', '.join(taken)} of an earlier run; choose a new folder")
        arguments.keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="inhand_fidelity_") as folder:
        for kind in arguments.loops:
            print(f"[fidelity] {kind} loop: {arguments.trials} trials", file=sys.stderr, flush=True)
            if kind == "eval":
                loops[kind] = run_eval(arguments.checkpoint, arguments.trials, arguments.seed)
            elif kind == "nodes":
                loops[kind] = run_nodes(arguments.checkpoint, arguments.trials, arguments.seed)
            else:
                loops[kind] = run_loop(kind, arguments, arguments.keep or Path(folder))
    for kind in ("state", "vision", "nodes"):
        if kind in loops and "eval" in loops:
            loops[kind][f"p_value_{kind}_vs_eval"] = round(mann_whitney_p(loops[kind]["successes"],
                                                                          loops["eval"]["successes"]), 4)
            loops[kind]["mean_ratio_to_eval"] = round(loops[kind]["successes_mean"]
                                                      / max(loops["eval"]["successes_mean"], 1e-9), 3)
    commanded = sum(loops[kind]["safety"].get("commanded_periods", 0) for kind in ("state", "vision") if kind in loops)
    altered = sum(loops[kind]["safety"].get("altered_periods", 0) for kind in ("state", "vision") if kind in loops)
    result["loops"] = loops
    result["safety_altered_fraction"] = round(altered / commanded, 6) if commanded else None
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
